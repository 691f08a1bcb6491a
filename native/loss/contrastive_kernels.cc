#include "loss/contrastive_kernels.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef U2PL_WITH_CUDA
#include "loss/cuda/loss_kernels_cuda.h"
#endif

namespace u2pl::loss {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The same masks through ATen ops (other devices): ranks from a sort.
PixelClassMasks ClassMasksAten(const at::Tensor& q, const at::Tensor& label, const at::Tensor& low,
                               const at::Tensor& high, int64_t m_labeled, const ContrastiveOptions& o) {
  const int64_t m = q.size(0), classes = q.size(1);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(q.device());
  at::Tensor order = std::get<1>(q.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  at::Tensor rank = at::empty_like(order).scatter_(1, order, at::arange(classes, long_opts).expand({m, classes}));
  at::Tensor onehot = label.unsqueeze(1).eq(at::arange(classes, long_opts));
  at::Tensor is_labeled = at::arange(m, long_opts).lt(m_labeled).unsqueeze(1);
  at::Tensor anchor_ok = onehot.logical_and(low.unsqueeze(1)).logical_and_(q.gt(o.current_class_threshold));
  at::Tensor window_u = rank.ge(o.low_rank).logical_and_(rank.lt(o.high_rank));
  at::Tensor window_l = rank.lt(o.low_rank).logical_and_(onehot.logical_not());
  at::Tensor window = at::where(is_labeled, window_l, window_u);
  at::Tensor negative_ok;
  if (o.paper_negatives) {
    at::Tensor labeled_ok = label.ge(0).logical_and(high).unsqueeze(1);
    negative_ok = at::where(is_labeled, labeled_ok, high.unsqueeze(1)).logical_and(window);
  } else {
    negative_ok = onehot.logical_and(high.unsqueeze(1)).logical_and_(window);
  }
  negative_ok.logical_and_(q.lt(o.current_class_negative_threshold));
  return {anchor_ok.t().contiguous(), negative_ok.t().contiguous()};
}

// Offset of each gathered pixel's channel 0 in an N x D x P tensor.
std::vector<int64_t> PixelOffsets(const at::Tensor& index, int64_t d, int64_t p) {
  const int64_t* idx = index.data_ptr<int64_t>();
  std::vector<int64_t> base(index.numel());
  for (size_t r = 0; r < base.size(); ++r) base[r] = (idx[r] / p) * d * p + idx[r] % p;
  return base;
}

// Backward tasks own blocks of 16 channels: one cache line of every K x D gradient row, and 16
// planes that stay in cache while they are zeroed and then written.
constexpr int64_t kChannelBlock = 16;

class GatherPixelRowsFunction : public torch::autograd::Function<GatherPixelRowsFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& ndp_in, const at::Tensor& index_in) {
    const at::Tensor ndp = ndp_in.contiguous(), index = index_in.contiguous();
    const int64_t d = ndp.size(1), p = ndp.size(2), k = index.size(0);
    at::Tensor out = at::empty({k, d}, ndp.options());
    const std::vector<int64_t> base = PixelOffsets(index, d, p);
    const float* src = ndp.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    // Row by row: each row's D reads are independent misses that the core overlaps (measured
    // faster here than channel blocks, which suit the read-modify-write backward).
    at::parallel_for(0, k, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < d; ++c) dst[r * d + c] = src[base[r] + c * p];
    });
    ctx->save_for_backward({index});
    ctx->saved_data["sizes"] = ndp.sizes().vec();
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor index = ctx->get_saved_variables()[0];
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const at::Tensor g = grad_outputs[0].contiguous();
    const int64_t n = sizes[0], d = sizes[1], p = sizes[2], k = index.size(0);
    at::Tensor grad = at::empty(sizes, g.options());
    const std::vector<int64_t> base = PixelOffsets(index, d, p);
    const float* pg = g.data_ptr<float>();
    float* out = grad.data_ptr<float>();
    // Repeated pixels accumulate in row order whatever the thread count.
    at::parallel_for(0, (d + kChannelBlock - 1) / kChannelBlock, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t c = b0 * kChannelBlock; c < std::min(b1 * kChannelBlock, d); ++c) {
        for (int64_t b = 0; b < n; ++b) std::fill_n(out + (b * d + c) * p, p, 0.f);
        for (int64_t r = 0; r < k; ++r) out[base[r] + c * p] += pg[r * d + c];
      }
    });
    return {grad, at::Tensor()};
  }
};

}  // namespace

PixelClassMasks ClassMasks(const at::Tensor& q_in, const at::Tensor& label_in, const at::Tensor& low_in,
                           const at::Tensor& high_in, int64_t m_labeled, const ContrastiveOptions& o) {
#ifdef U2PL_WITH_CUDA
  if (q_in.is_cuda() && q_in.scalar_type() == at::kFloat) {
    auto [anchor_ok, negative_ok] = cuda::ClassMasks(q_in, label_in, low_in, high_in, m_labeled, o.current_class_threshold,
                                                     o.current_class_negative_threshold, o.low_rank, o.high_rank,
                                                     o.paper_negatives);
    return {anchor_ok, negative_ok};
  }
#endif
  if (!q_in.is_cpu() || q_in.scalar_type() != at::kFloat) return ClassMasksAten(q_in, label_in, low_in, high_in, m_labeled, o);
  const at::Tensor q = q_in.contiguous(), label = label_in.contiguous();
  const at::Tensor low = low_in.to(at::kBool).contiguous(), high = high_in.to(at::kBool).contiguous();
  const int64_t m = q.size(0), classes = q.size(1);
  at::Tensor anchor_ok = at::zeros({classes, m}, q.options().dtype(at::kBool));
  at::Tensor negative_ok = at::zeros({classes, m}, q.options().dtype(at::kBool));
  const float* pq = q.data_ptr<float>();
  const int64_t* pl = label.data_ptr<int64_t>();
  const bool* plow = low.data_ptr<bool>();
  const bool* phigh = high.data_ptr<bool>();
  bool* pa = anchor_ok.data_ptr<bool>();
  bool* pn = negative_ok.data_ptr<bool>();
  const float delta_p = static_cast<float>(o.current_class_threshold);
  const float delta_n = static_cast<float>(o.current_class_negative_threshold);
  const int32_t r_l = static_cast<int32_t>(o.low_rank), r_h = static_cast<int32_t>(o.high_rank);
  auto in_window = [&](bool labeled, bool is_c, int32_t rank) {
    return labeled ? rank < r_l && !is_c : rank >= r_l && rank < r_h;
  };
  at::parallel_for(0, m, 256, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> rank(classes);
    for (int64_t i = begin; i < end; ++i) {
      const float* qi = pq + i * classes;
      const int64_t y = pl[i];
      const bool labeled = i < m_labeled;
      if (y >= 0 && plow[i] && qi[y] > delta_p) pa[y * m + i] = true;
      if (!o.paper_negatives) {
        // Reference [Q]: only the pixel's own class can take it as a negative (pixels of class c
        // in U within c's window; never on labeled pixels, whose window excludes c).
        if (y < 0 || !phigh[i] || labeled) continue;
        int32_t r = 0;
        for (int64_t k = 0; k < classes; ++k) r += (qi[k] > qi[y]) | ((qi[k] == qi[y]) & (k < y));
        pn[y * m + i] = in_window(labeled, true, r) && qi[y] < delta_n;
        continue;
      }
      // Paper: labeled valid pixels of another class, unlabeled pixels in U; every class's rank.
      if (!phigh[i] || (labeled && y < 0)) continue;
      std::fill(rank.begin(), rank.end(), 0);
      for (int64_t k = 0; k < classes; ++k) {
        const float qk = qi[k];
        for (int64_t c = 0; c < classes; ++c) rank[c] += (qk > qi[c]) | ((qk == qi[c]) & (k < c));
      }
      for (int64_t c = 0; c < classes; ++c)
        pn[c * m + i] = in_window(labeled, y == c, rank[c]) && qi[c] < delta_n;
    }
  });
  return {anchor_ok, negative_ok};
}

at::Tensor ClassSums(const at::Tensor& ndp, const at::Tensor& cls_in, int64_t classes) {
  const int64_t n = ndp.size(0), d = ndp.size(1), p = ndp.size(2);
  if (!ndp.is_cpu() || ndp.scalar_type() != at::kFloat) {
    at::Tensor onehot = cls_in.view({n, p}).unsqueeze(2).eq(at::arange(classes, cls_in.options())).to(ndp.scalar_type());
    return at::bmm(ndp, onehot).sum(0).t();
  }
  const at::Tensor src = ndp.contiguous(), cls = cls_in.contiguous();
  at::Tensor sums = at::zeros({classes, d}, ndp.options());
  const int64_t* pc = cls.data_ptr<int64_t>();
  const float* ps = src.data_ptr<float>();
  float* out = sums.data_ptr<float>();
  // Each class's pixels in order (a counting sort), as offsets of their channel 0: then every
  // channel sums each class over a list, with no branch per pixel (labels that change pixel to
  // pixel made that branch a misprediction in three) and no add chained through memory.
  std::vector<int64_t> first(classes + 1, 0);
  for (int64_t g = 0; g < n * p; ++g)
    if (pc[g] >= 0) ++first[pc[g] + 1];
  for (int64_t k = 0; k < classes; ++k) first[k + 1] += first[k];
  std::vector<int64_t> offset(first[classes]), next(first.begin(), first.end() - 1);
  for (int64_t g = 0; g < n * p; ++g)
    if (pc[g] >= 0) offset[next[pc[g]]++] = (g / p) * d * p + g % p;
  at::parallel_for(0, d, 8, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float* plane = ps + c * p;
      for (int64_t k = 0; k < classes; ++k) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains
        int64_t t = first[k];
        for (; t + 4 <= first[k + 1]; t += 4) {
          s0 += plane[offset[t]];
          s1 += plane[offset[t + 1]];
          s2 += plane[offset[t + 2]];
          s3 += plane[offset[t + 3]];
        }
        for (; t < first[k + 1]; ++t) s0 += plane[offset[t]];
        out[k * d + c] = static_cast<float>((s0 + s1) + (s2 + s3));
      }
    }
  });
  return sums;
}

at::Tensor GatherPixelRows(const at::Tensor& ndp, const at::Tensor& index) {
  TORCH_CHECK(ndp.dim() == 3 && index.dim() == 1, "GatherPixelRows: N x D x P and K indices expected, got ", ndp.sizes(),
              " and ", index.sizes());
  if (ndp.is_cpu() && ndp.scalar_type() == at::kFloat) return GatherPixelRowsFunction::apply(ndp, index.to(at::kLong));
  using at::indexing::Slice;
  const int64_t p = ndp.size(2);
  return ndp.index({index.div(p, "floor"), Slice(), index.remainder(p)});
}

}  // namespace u2pl::loss
