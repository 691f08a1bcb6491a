// Supervised loss L_s (§6): cross-entropy with ignore label, or OHEM cross-entropy, on logits
// upsampled (align-corners) to the label size; plus the weighted auxiliary term.
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

struct SupervisedOptions {
  bool ohem = false;
  double ohem_thresh = 0.7;
  int64_t ohem_min_kept = 100000;
  double aux_weight = 0.4;
  int64_t ignore_index = 255;
  at::Tensor class_weight;  // optional C floats: class-weighted cross-entropy (criterion.kwargs.class_weight)
};

// logits: N x C x h x w (any h, w); labels: N x H x W int64. Mean over the kept pixels; with
// class_weight (C floats) the weighted mean, sum w[y] * CE / sum w[y], as torch's weighted CE.
at::Tensor CrossEntropy(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index,
                        const at::Tensor& class_weight = {});

// OHEM selection (§6.2) on logits already at the label size: the pixels to keep (bool N x H x W).
at::Tensor OhemKeepMask(const at::Tensor& logits, const at::Tensor& labels, double thresh, int64_t min_kept,
                        int64_t ignore_index);

// L_s = loss(pred) + aux_weight * loss(aux) (aux may be undefined). With class weights OHEM selects
// the pixels unweighted and the kept ones are weighted.
at::Tensor SupervisedLoss(const at::Tensor& pred, const at::Tensor& aux, const at::Tensor& labels,
                          const SupervisedOptions& options);

}  // namespace u2pl::loss
