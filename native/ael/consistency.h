// The AEL variant's consistency loss and per-class confidence (u2pl-ael-method.md A3, A6): a
// confidence-weighted cross-entropy whose pixels are kept with a probability that grows with their
// (predicted) class's difficulty, normalised to a weighted mean.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace u2pl::ael {

struct ConsistencyOptions {
  double gamma = 2;     // confidence exponent: w = c^gamma
  double gamma2 = 1;    // difficulty exponent of the keep probability
  bool sample = true;   // class-adaptive pixel sampling (`criterion.cons.sample`)
  // Q2 [Q]: the weights are normalised over every pixel, ignored ones included (reference); false:
  // over the pixels with a target only.
  bool normalise_over_all = true;
  // Q8 [Q]: one uniform map per class shared by every image of the batch (reference); false: one per image.
  bool shared_sampling_map = true;
  int64_t ignore_index = 255;
};

// logits N x C x H x W (the student's, at the targets' size, with gradient), confidence N x H x W,
// target N x H x W (ignore_index where none), confidence_per_class kappa (C, in [0, 1]; used when
// sampling). The value is sum_p w_p * CE_p with sum_p w_p = 1 (or 0 when every weight is 0).
at::Tensor ConsistencyLoss(const at::Tensor& logits, const at::Tensor& confidence, const at::Tensor& target,
                           const at::Tensor& confidence_per_class, const ConsistencyOptions& options, at::Generator generator);

// A3: for each class c, the mean predicted probability of c over the pixels labelled c (0 where
// there are none), and whether c occurs. prob N x C x H x W, labels N x H x W.
// Data parallel (Q5 fixed) sums the parts over the ranks and takes FromSums again.
struct ClassConfidence {
  at::Tensor sums;     // C: the summed probabilities of the true class
  at::Tensor counts;   // C: the labelled pixels of each class
  at::Tensor mean;     // C: sums / counts, 0 where counts is 0
  at::Tensor present;  // C, bool: counts > 0
  static ClassConfidence FromSums(const at::Tensor& sums, const at::Tensor& counts);
};
ClassConfidence MeasureClassConfidence(const at::Tensor& prob, const at::Tensor& labels, int64_t ignore_index = 255);

// A6 pseudo-label of the unlabeled term: argmax of the (mixed) teacher logits with the pixels of
// one entropy tail set to ignore: Q1 [Q] the lowest-entropy percent % (entropy < Percentile(percent),
// reference), or fixed: the highest-entropy percent % (entropy >= Percentile(100 - percent)).
// logits N x C x H x W; the percentile is over all pixels. Also returns the entropy map.
struct ConsistencyTarget {
  at::Tensor target;      // N x H x W long
  at::Tensor confidence;  // N x H x W: max softmax
  at::Tensor entropy;     // N x H x W
};
ConsistencyTarget PseudoLabelsWithEntropyIgnore(const at::Tensor& logits, double percent, bool ignore_confident,
                                                int64_t ignore_index = 255);

}  // namespace u2pl::ael
