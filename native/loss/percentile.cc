#include "loss/percentile.h"

#include <cmath>

#include <ATen/ATen.h>

namespace u2pl::loss {

at::Tensor Percentile(const at::Tensor& values, double q) {
  TORCH_CHECK(q >= 0 && q <= 100, "percentile q must be in [0, 100], got ", q);
  at::Tensor flat = values.reshape({-1});
  const int64_t n = flat.numel();
  TORCH_CHECK(n > 0, "percentile of an empty set");
  const double pos = q / 100.0 * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(lo);
  // kthvalue is 1-based and runs in linear time (quickselect).
  at::Tensor v_lo = std::get<0>(at::kthvalue(flat, lo + 1));
  if (frac == 0 || lo + 1 >= n) return v_lo;
  at::Tensor v_hi = std::get<0>(at::kthvalue(flat, lo + 2));
  return v_lo + (v_hi - v_lo) * frac;
}

at::Tensor MaskedPercentile(const at::Tensor& values, const at::Tensor& mask, double q) {
  at::Tensor selected = values.masked_select(mask);
  TORCH_CHECK(selected.numel() > 0, "percentile over a mask that selects no element");
  return Percentile(selected, q);
}

}  // namespace u2pl::loss
