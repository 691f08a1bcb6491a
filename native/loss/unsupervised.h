// Unsupervised loss L_u (§9): cross-entropy of the student against pseudo-labels, with the
// pixels of highest teacher entropy (the top (100 - q)% of valid pixels) re-labelled to ignore.
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

enum class UnsupervisedWeighting {
  kReference,  // (B*H*W - excluded) * sum_kept CE / N_keep^2: the reference's factor on top of a mean [Q]
  kPaper,      // sum_kept CE / N_keep
};

// The counts and the threshold stay tensors on the loss's device (the trainer reads a step's numbers
// in one go); `valid` is read by the percentile anyway (its ranks are host numbers).
struct UnsupervisedResult {
  at::Tensor loss;       // 0-d, connected to the student logits
  at::Tensor entropy;    // B x H x W teacher entropy (reused by the contrastive masks)
  at::Tensor threshold;  // 0-d float: the entropy percentile (0 when no pixel has a pseudo-label)
  at::Tensor kept;       // 0-d int64: pixels that contribute
  int64_t valid = 0;     // pixels with a pseudo-label
};

// student_logits, teacher_logits: B x C x h x w; pseudo_labels: B x H x W int64 (ignore_index
// where there is none); percentile q = 100 - unreliable share (the drop schedule, in TypeScript).
// excluded_pixels (0-d int64, or undefined: 0): ignored pixels left out of the reference factor's B*H*W. The trainer passes
// those its confidence threshold and class-balanced selection ignore (not reference features):
// counted in, a filter that keeps few pixels would scale the loss by up to B*H*W / N_keep
// (thousands) and diverge.
UnsupervisedResult UnsupervisedLoss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                                    const at::Tensor& pseudo_labels, double q, UnsupervisedWeighting weighting,
                                    int64_t ignore_index = 255, const at::Tensor& excluded_pixels = {});

}  // namespace u2pl::loss
