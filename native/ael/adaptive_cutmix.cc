#include "ael/adaptive_cutmix.h"

#include <cmath>

#include <ATen/ATen.h>

namespace u2pl::ael {
namespace {

double Uniform(at::Generator& generator, double low = 0, double high = 1) {
  return at::empty({1}, at::TensorOptions().dtype(at::kDouble)).uniform_(low, high, generator).item<double>();
}

}  // namespace

std::optional<Box> ComponentBox(const at::Tensor& prediction, int64_t cls, double min_pixels, at::Generator generator) {
  TORCH_CHECK(prediction.dim() == 2, "component box: the prediction must be H x W, got ", prediction.sizes());
  const at::Tensor map = prediction.to(at::kCPU, at::kLong).contiguous();
  const int64_t h = map.size(0), w = map.size(1);
  const int64_t* y = map.data_ptr<int64_t>();
  // Labelling by flood fill with an explicit stack, components numbered in raster order of their first pixel.
  std::vector<int32_t> label(h * w, -1);
  struct Extent { int64_t pixels = 0, top, left, bottom, right; };
  std::vector<Extent> parts;
  std::vector<int64_t> stack;
  for (int64_t start = 0; start < h * w; ++start) {
    if (y[start] != cls || label[start] >= 0) continue;
    const int32_t id = static_cast<int32_t>(parts.size());
    Extent e{0, start / w, start % w, start / w, start % w};
    label[start] = id;
    stack.push_back(start);
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      const int64_t r = p / w, c = p % w;
      ++e.pixels;
      e.top = std::min(e.top, r), e.bottom = std::max(e.bottom, r), e.left = std::min(e.left, c), e.right = std::max(e.right, c);
      for (int64_t dr = -1; dr <= 1; ++dr)
        for (int64_t dc = -1; dc <= 1; ++dc) {
          const int64_t rr = r + dr, cc = c + dc;
          if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
          const int64_t q = rr * w + cc;
          if (y[q] == cls && label[q] < 0) {
            label[q] = id;
            stack.push_back(q);
          }
        }
    }
    parts.push_back(e);
  }
  if (parts.empty()) return std::nullopt;
  at::Tensor order = at::randperm(static_cast<int64_t>(parts.size()), generator, at::TensorOptions().dtype(at::kLong));
  for (int64_t i = 0; i < order.size(0); ++i) {
    const Extent& e = parts[order[i].item<int64_t>()];
    if (static_cast<double>(e.pixels) > min_pixels) return Box{e.top, e.left, e.bottom - e.top + 1, e.right - e.left + 1, true};
  }
  return std::nullopt;
}

Box RandomBox(int64_t h, int64_t w, at::Generator generator) {
  const double a = Uniform(generator, 0.5, 0.5);  // always 0.5; the reference draws it anyway
  const double ry = std::exp(Uniform(generator) * std::log(a));
  const double rx = a / ry;
  const int64_t sy = static_cast<int64_t>(std::nearbyint(ry * static_cast<double>(h)));
  const int64_t sx = static_cast<int64_t>(std::nearbyint(rx * static_cast<double>(w)));
  Box box;
  box.height = std::min(sy, h);
  box.width = std::min(sx, w);
  box.top = static_cast<int64_t>(std::nearbyint(static_cast<double>(h - box.height) * Uniform(generator)));
  box.left = static_cast<int64_t>(std::nearbyint(static_cast<double>(w - box.width) * Uniform(generator)));
  return box;
}

at::Tensor BoxMask(const Box& box, int64_t h, int64_t w, const at::TensorOptions& options) {
  at::Tensor mask = at::zeros({h, w}, options.dtype(at::kBool));
  mask.slice(0, box.top, box.top + box.height).slice(1, box.left, box.left + box.width).fill_(true);
  return mask;
}

std::vector<bool> ClassPresence(const at::Tensor& prediction, int64_t classes, double min_pixels) {
  at::Tensor flat = prediction.reshape({-1}).to(at::kCPU, at::kLong);
  flat = flat.masked_select(flat.ge(0).logical_and_(flat.lt(classes)));
  at::Tensor counts = at::bincount(flat, {}, classes);
  std::vector<bool> out(classes);
  for (int64_t c = 0; c < classes; ++c) out[c] = static_cast<double>(counts[c].item<int64_t>()) >= min_pixels;
  return out;
}

}  // namespace u2pl::ael
