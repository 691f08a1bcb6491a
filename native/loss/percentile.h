// Linear-interpolation percentile (u2pl-method.md §0), computed with selection rather than a sort
// and without leaving the device.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

// Percentile(values, q) for q in [0, 100] over all elements of `values` (any shape, at least one
// element). Returns a 0-d tensor of values' dtype on values' device.
at::Tensor Percentile(const at::Tensor& values, double q);

// The same over the elements where mask is true; throws when the mask selects nothing.
at::Tensor MaskedPercentile(const at::Tensor& values, const at::Tensor& mask, double q);

// Several percentiles of the same masked set, selected from one copy of it.
std::vector<at::Tensor> MaskedPercentiles(const at::Tensor& values, const at::Tensor& mask, const std::vector<double>& qs);

}  // namespace u2pl::loss
