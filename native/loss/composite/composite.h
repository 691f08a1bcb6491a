// Straightforward implementations of the U2PL losses, transliterated from the reference's
// PyTorch code (full sorts, per-class loops over masked tensors, concatenate-and-truncate
// queues). They are the yardstick the kernels in loss/ are tested and benchmarked against.
#pragma once

#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "loss/contrastive.h"
#include "loss/unsupervised.h"

namespace u2pl::loss::composite {

// np.percentile(x, q) via a full sort.
at::Tensor Percentile(const at::Tensor& values, double q);

// Upsample (align corners), softmax, -sum p log(p + 1e-10).
at::Tensor UpsampledEntropy(const at::Tensor& logits, int64_t out_h, int64_t out_w);

// The reference's OhemCrossEntropy2dTensor selection (sort of all pixels, invalid ones as p = 1).
at::Tensor OhemKeepMask(const at::Tensor& logits, const at::Tensor& labels, double thresh, int64_t min_kept,
                        int64_t ignore_index);

UnsupervisedResult UnsupervisedLoss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                                    const at::Tensor& pseudo_labels, double q, UnsupervisedWeighting weighting,
                                    int64_t ignore_index = 255, int64_t excluded_pixels = 0);

// Queues as in the reference: one tensor per class, concatenated then truncated to the newest.
struct Queues {
  std::vector<at::Tensor> keys;
  std::vector<int64_t> capacity;
};

ContrastiveResult ContrastiveLoss(const ContrastiveInputs& in, const ContrastiveOptions& options, Queues& queues,
                                  at::Generator generator);

}  // namespace u2pl::loss::composite
