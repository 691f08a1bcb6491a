#include "loss/percentile.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

namespace u2pl::loss {
namespace {

struct Rank {
  int64_t lo;
  double frac;
};

Rank RankOf(int64_t n, double q) {
  TORCH_CHECK(q >= 0 && q <= 100, "percentile q must be in [0, 100], got ", q);
  TORCH_CHECK(n > 0, "percentile of an empty set");
  const double pos = q / 100.0 * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  return {lo, pos - static_cast<double>(lo)};
}

// Float CPU values: quickselect (std::nth_element) on one copy; the upper neighbour is the
// minimum of the part above the selected element, so each q costs one selection.
std::vector<at::Tensor> SelectOnHost(std::vector<float> v, const std::vector<double>& qs, const at::TensorOptions& opts) {
  std::vector<at::Tensor> out;
  const int64_t n = static_cast<int64_t>(v.size());
  for (double q : qs) {
    const Rank r = RankOf(n, q);
    std::nth_element(v.begin(), v.begin() + r.lo, v.end());
    const float lo = v[r.lo];
    float value = lo;
    if (r.frac != 0 && r.lo + 1 < n) {
      const float hi = *std::min_element(v.begin() + r.lo + 1, v.end());
      value = lo + (hi - lo) * static_cast<float>(r.frac);
    }
    out.push_back(at::scalar_tensor(value, opts));
  }
  return out;
}

// Other devices and types: ATen's kthvalue (linear-time selection) per rank.
at::Tensor SelectWithAten(const at::Tensor& flat, double q) {
  const int64_t n = flat.numel();
  const Rank r = RankOf(n, q);
  at::Tensor v_lo = std::get<0>(at::kthvalue(flat, r.lo + 1));  // kthvalue is 1-based
  if (r.frac == 0 || r.lo + 1 >= n) return v_lo;
  at::Tensor v_hi = std::get<0>(at::kthvalue(flat, r.lo + 2));
  return v_lo + (v_hi - v_lo) * r.frac;
}

bool OnHost(const at::Tensor& t) { return t.is_cpu() && t.scalar_type() == at::kFloat; }

}  // namespace

at::Tensor Percentile(const at::Tensor& values, double q) {
  if (!OnHost(values)) return SelectWithAten(values.reshape({-1}), q);
  const at::Tensor flat = values.contiguous().reshape({-1});
  const float* p = flat.data_ptr<float>();
  return SelectOnHost(std::vector<float>(p, p + flat.numel()), {q}, values.options())[0];
}

at::Tensor MaskedPercentile(const at::Tensor& values, const at::Tensor& mask, double q) {
  return MaskedPercentiles(values, mask, {q})[0];
}

std::vector<at::Tensor> MaskedPercentiles(const at::Tensor& values, const at::Tensor& mask, const std::vector<double>& qs) {
  TORCH_CHECK(values.sizes() == mask.sizes(), "percentile: values ", values.sizes(), " and mask ", mask.sizes(),
              " differ in shape");
  if (!OnHost(values) || !mask.is_cpu()) {
    const at::Tensor selected = values.masked_select(mask);
    TORCH_CHECK(selected.numel() > 0, "percentile over a mask that selects no element");
    std::vector<at::Tensor> out;
    for (double q : qs) out.push_back(SelectWithAten(selected, q));
    return out;
  }
  const at::Tensor v = values.contiguous(), m = mask.to(at::kBool).contiguous();
  const float* pv = v.data_ptr<float>();
  const bool* pm = m.data_ptr<bool>();
  std::vector<float> selected;
  selected.reserve(v.numel());
  for (int64_t i = 0; i < v.numel(); ++i)
    if (pm[i]) selected.push_back(pv[i]);
  TORCH_CHECK(!selected.empty(), "percentile over a mask that selects no element");
  return SelectOnHost(std::move(selected), qs, values.options());
}

}  // namespace u2pl::loss
