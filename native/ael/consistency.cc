#include "ael/consistency.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "loss/percentile.h"

namespace u2pl::ael {

at::Tensor ConsistencyLoss(const at::Tensor& logits, const at::Tensor& confidence, const at::Tensor& target,
                           const at::Tensor& confidence_per_class, const ConsistencyOptions& o, at::Generator generator) {
  const int64_t n = logits.size(0), classes = logits.size(1), h = logits.size(2), w = logits.size(3);
  TORCH_CHECK(target.sizes() == at::IntArrayRef({n, h, w}) && confidence.sizes() == target.sizes(),
              "consistency loss: target and confidence must be N x H x W matching the logits, got ", target.sizes(), " and ",
              confidence.sizes(), " for ", logits.sizes());
  at::Tensor t = target.to(at::kLong);
  const at::Tensor valid = t.ne(o.ignore_index);
  at::Tensor weight;
  {
    at::NoGradGuard no_grad;
    weight = confidence.to(at::kFloat).pow(o.gamma).mul(valid.logical_or(at::scalar_tensor(o.normalise_over_all, valid.options())));
    if (o.sample) {
      // Keep a pixel the student predicts as c with probability d_c = ((1 - kappa_c) / max(1 - kappa))^gamma2,
      // drawing one uniform per class and pixel.
      at::Tensor difficulty = 1 - confidence_per_class.to(logits.device(), at::kFloat);
      at::Tensor keep_prob = (difficulty / (difficulty.max() + 1e-12)).pow(o.gamma2);
      at::Tensor predicted = logits.detach().argmax(1);  // N x H x W
      at::Tensor draws;
      if (o.shared_sampling_map) {
        // One H x W map per class, shared by all images: pixel p of image i reads map predicted[i, p] at p.
        at::Tensor maps = at::rand({classes, h * w}, generator, at::TensorOptions().dtype(at::kFloat)).to(logits.device());
        draws = maps.gather(0, predicted.reshape({n, h * w})).reshape({n, h, w});
      } else {
        at::Tensor maps = at::rand({n, classes, h, w}, generator, at::TensorOptions().dtype(at::kFloat)).to(logits.device());
        draws = maps.gather(1, predicted.unsqueeze(1)).squeeze(1);
      }
      // The reference keeps U > 1 - d; U < d is the same law and keeps every pixel of the hardest class.
      weight = weight.mul(draws.lt(keep_prob.index_select(0, predicted.reshape({-1})).reshape({n, h, w})));
    }
    weight = weight / (weight.sum() + 1e-12);
  }
  at::Tensor ce = -at::log_softmax(logits.to(at::kFloat), 1).gather(1, t.masked_fill(valid.logical_not(), 0).unsqueeze(1)).squeeze(1);
  return (ce * weight.mul(valid)).sum();
}

ClassConfidence MeasureClassConfidence(const at::Tensor& prob, const at::Tensor& labels, int64_t ignore_index) {
  at::NoGradGuard no_grad;
  const int64_t classes = prob.size(1);
  const at::Tensor all = labels.to(prob.device(), at::kLong).reshape({-1});
  const at::Tensor p = prob.to(at::kFloat).permute({0, 2, 3, 1}).reshape({-1, classes});
  const at::Tensor labelled = all.ne(ignore_index).logical_and_(all.ge(0)).logical_and_(all.lt(classes));
  const at::Tensor y = all.masked_select(labelled);
  // The probability of each labelled pixel's true class.
  const at::Tensor own = p.gather(1, all.clamp(0, classes - 1).unsqueeze(1)).squeeze(1).masked_select(labelled);
  at::Tensor sums = at::zeros({classes}, p.options()).index_add_(0, y, own);
  return ClassConfidence::FromSums(sums, at::bincount(y, {}, classes).to(at::kFloat));
}

ClassConfidence ClassConfidence::FromSums(const at::Tensor& sums, const at::Tensor& counts) {
  return {sums, counts, sums / (counts + 1e-12), counts.gt(0)};
}

ConsistencyTarget PseudoLabelsWithEntropyIgnore(const at::Tensor& logits, double percent, bool ignore_confident,
                                                int64_t ignore_index) {
  at::NoGradGuard no_grad;
  ConsistencyTarget r;
  at::Tensor prob = at::softmax(logits.to(at::kFloat), 1);
  r.entropy = -(prob * at::log(prob + 1e-10)).sum(1);
  std::tie(r.confidence, r.target) = prob.max(1);
  if (percent > 0) {
    if (ignore_confident) {
      r.target.masked_fill_(r.entropy.lt(loss::Percentile(r.entropy, percent)), ignore_index);
    } else {
      r.target.masked_fill_(r.entropy.ge(loss::Percentile(r.entropy, 100 - percent)), ignore_index);
    }
  }
  return r;
}

}  // namespace u2pl::ael
