#include "ael/copy_paste.h"

#include <array>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace u2pl::ael {

int64_t CopyPaste(at::Tensor& images, at::Tensor& labels, const at::Tensor& partner_images, const at::Tensor& partner_labels,
                  const std::vector<bool>& has_partner, const std::vector<int64_t>& classes) {
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.scalar_type() == at::kFloat, "copy-paste: images must be B x 3 x H x W float");
  TORCH_CHECK(labels.sizes() == at::IntArrayRef({b, h, w}), "copy-paste: labels must be B x H x W, got ", labels.sizes());
  TORCH_CHECK(partner_images.sizes() == images.sizes() && partner_labels.sizes() == labels.sizes(),
              "copy-paste: the partners must have the shapes of the images and labels");
  TORCH_CHECK(static_cast<int64_t>(has_partner.size()) == b, "copy-paste: has_partner needs one flag per image");
  if (classes.empty()) return 0;
  // The pixel work on the CPU (the step's batch is small next to the network); other devices round-trip.
  at::Tensor img = images.to(at::kCPU).contiguous(), lab = labels.to(at::kCPU, at::kLong).contiguous();
  at::Tensor pimg = partner_images.to(at::kCPU, at::kFloat).contiguous(), plab = partner_labels.to(at::kCPU, at::kLong).contiguous();
  std::array<bool, 256> chosen{};
  for (int64_t c : classes)
    if (c >= 0 && c < 256) chosen[c] = true;
  float* x = img.data_ptr<float>();
  int64_t* y = lab.data_ptr<int64_t>();
  const float* px = pimg.data_ptr<float>();
  const int64_t* py = plab.data_ptr<int64_t>();
  const int64_t plane = h * w;
  std::vector<int64_t> pasted(b, 0);
  at::parallel_for(0, b * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / h, off = (row % h) * w;
      if (!has_partner[n]) continue;
      int64_t count = 0;
      for (int64_t i = off; i < off + w; ++i) {
        const int64_t p = py[n * plane + i];
        if (p < 0 || p >= 256 || !chosen[p]) continue;
        y[n * plane + i] = p;
        for (int64_t ch = 0; ch < 3; ++ch) x[(n * 3 + ch) * plane + i] = px[(n * 3 + ch) * plane + i];
        ++count;
      }
      // Rows of one image may run on several threads.
      __atomic_add_fetch(&pasted[n], count, __ATOMIC_RELAXED);
    }
  });
  if (!img.is_same(images)) images.copy_(img);
  if (!lab.is_same(labels)) labels.copy_(lab);
  int64_t total = 0;
  for (int64_t p : pasted) total += p;
  return total;
}

int64_t CopyPasteReference(at::Tensor& images, at::Tensor& labels, const at::Tensor& partner_images, const at::Tensor& partner_labels,
                           const std::vector<bool>& has_partner, const std::vector<int64_t>& classes) {
  if (classes.empty()) return 0;
  std::vector<uint8_t> flags(has_partner.begin(), has_partner.end());
  at::Tensor present = at::tensor(flags, at::TensorOptions().dtype(at::kByte)).to(images.device(), at::kBool).view({-1, 1, 1});
  at::Tensor chosen = at::tensor(classes, at::TensorOptions().dtype(at::kLong)).to(images.device());
  at::Tensor paste = at::isin(partner_labels.to(at::kLong), chosen).logical_and_(present);
  images.copy_(at::where(paste.unsqueeze(1), partner_images.to(images.scalar_type()), images));
  labels.copy_(at::where(paste, partner_labels.to(labels.scalar_type()), labels));
  return paste.sum().item<int64_t>();
}

std::vector<bool> PartnerPresentByLabelSum(const at::Tensor& partner_labels) {
  at::Tensor sums = partner_labels.to(at::kCPU, at::kLong).reshape({partner_labels.size(0), -1}).sum(1);
  std::vector<bool> out;
  for (int64_t i = 0; i < sums.size(0); ++i) out.push_back(sums[i].item<int64_t>() != 0);
  return out;
}

}  // namespace u2pl::ael
