// Confusion-matrix accumulation for mIoU (§13.1).
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

// C x C int64 counts of (ground truth row, prediction column) over pixels whose ground truth and
// prediction are both in [0, C); ignore pixels (ground truth = ignore_index) are skipped.
at::Tensor ConfusionMatrix(const at::Tensor& prediction, const at::Tensor& ground_truth, int64_t classes,
                           int64_t ignore_index = 255);

}  // namespace u2pl::loss
