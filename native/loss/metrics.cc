#include "loss/metrics.h"

#include <ATen/ATen.h>

namespace u2pl::loss {

at::Tensor ConfusionMatrix(const at::Tensor& prediction, const at::Tensor& ground_truth, int64_t classes,
                           int64_t ignore_index) {
  TORCH_CHECK(prediction.sizes() == ground_truth.sizes(), "confusion matrix: prediction ", prediction.sizes(),
              " and ground truth ", ground_truth.sizes(), " differ in shape");
  at::Tensor gt = ground_truth.reshape({-1}).to(at::kLong);
  at::Tensor pred = prediction.reshape({-1}).to(at::kLong);
  at::Tensor keep = gt.ne(ignore_index).logical_and_(gt.ge(0)).logical_and_(gt.lt(classes)).logical_and_(pred.ge(0)).logical_and_(pred.lt(classes));
  at::Tensor index = gt.masked_select(keep) * classes + pred.masked_select(keep);
  return at::bincount(index, {}, classes * classes).view({classes, classes}).to(at::kLong);
}

}  // namespace u2pl::loss
