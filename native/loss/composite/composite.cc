#include "loss/composite/composite.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

namespace u2pl::loss::composite {
namespace {

at::Tensor OneHot(const at::Tensor& labels, int64_t classes, int64_t ignore_index) {
  // Ignore (and out-of-range) pixels get an all-zero vector.
  at::Tensor valid = labels.ge(0).logical_and(labels.lt(classes)).logical_and(labels.ne(ignore_index));
  at::Tensor out = at::zeros({labels.size(0), classes, labels.size(1), labels.size(2)}, labels.options().dtype(at::kFloat));
  out.scatter_(1, labels.masked_fill(valid.logical_not(), 0).unsqueeze(1), valid.unsqueeze(1).to(at::kFloat));
  return out;
}

}  // namespace

at::Tensor Percentile(const at::Tensor& values, double q) {
  at::Tensor sorted = std::get<0>(values.reshape({-1}).to(at::kDouble).sort());
  const int64_t n = sorted.numel();
  TORCH_CHECK(n > 0, "percentile of an empty set");
  const double pos = q / 100.0 * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  const int64_t hi = std::min(lo + 1, n - 1);
  return (sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo))).to(values.scalar_type());
}

at::Tensor UpsampledEntropy(const at::Tensor& logits, int64_t out_h, int64_t out_w) {
  at::Tensor prob = at::softmax(at::upsample_bilinear2d(logits.to(at::kFloat), {out_h, out_w}, true), 1);
  return -at::sum(prob * at::log(prob + 1e-10), 1);
}

at::Tensor OhemKeepMask(const at::Tensor& logits, const at::Tensor& labels, double thresh, int64_t min_kept,
                        int64_t ignore_index) {
  at::NoGradGuard no_grad;
  const int64_t c = logits.size(1);
  at::Tensor target = labels.reshape({-1});
  at::Tensor valid = target.ne(ignore_index);
  target = target * valid.to(at::kLong);
  const int64_t num_valid = valid.sum().item<int64_t>();
  at::Tensor prob = at::softmax(logits.to(at::kFloat), 1).transpose(0, 1).reshape({c, -1});
  if (min_kept > num_valid || num_valid == 0) return valid.view_as(labels);
  prob = prob.masked_fill(valid.logical_not(), 1);
  at::Tensor mask_prob = prob.index({target, at::arange(target.numel(), target.options())});
  if (min_kept <= 0) return valid.view_as(labels);
  at::Tensor index = std::get<1>(mask_prob.sort());
  at::Tensor at_k = mask_prob[index[std::min<int64_t>(index.numel(), min_kept) - 1]];
  double threshold = thresh;
  if (at_k.item<double>() > thresh) threshold = at_k.item<double>();
  return valid.logical_and(mask_prob.le(threshold)).view_as(labels);
}

UnsupervisedResult UnsupervisedLoss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                                    const at::Tensor& pseudo_labels, double q, UnsupervisedWeighting weighting,
                                    int64_t ignore_index, int64_t excluded_pixels) {
  const int64_t b = pseudo_labels.size(0), h = pseudo_labels.size(1), w = pseudo_labels.size(2);
  at::Tensor predict = at::upsample_bilinear2d(student_logits.to(at::kFloat), {h, w}, true);
  UnsupervisedResult r;
  at::Tensor target = pseudo_labels.clone();
  at::Tensor weight;
  int64_t kept = 0;
  {
    at::NoGradGuard no_grad;
    r.entropy = UpsampledEntropy(teacher_logits.detach(), h, w);
    at::Tensor valid = target.ne(ignore_index);
    r.valid = valid.sum().item<int64_t>();
    r.threshold = at::zeros({}, r.entropy.options());
    if (r.valid > 0) {
      r.threshold = Percentile(r.entropy.masked_select(valid), q);
      target.masked_fill_(r.entropy.ge(r.threshold).logical_and(valid), ignore_index);
    }
    kept = target.ne(ignore_index).sum().item<int64_t>();
    r.kept = at::scalar_tensor(kept, at::TensorOptions().dtype(at::kLong));
  }
  if (kept == 0) {
    r.loss = predict.sum() * 0.0;
    return r;
  }
  at::Tensor mean = at::cross_entropy_loss(predict, target, {}, at::Reduction::Mean, ignore_index);
  r.loss = weighting == UnsupervisedWeighting::kReference ? mean * (static_cast<double>(b * h * w - excluded_pixels) / static_cast<double>(kept))
                                                          : mean;
  return r;
}

ContrastiveResult ContrastiveLoss(const ContrastiveInputs& in, const ContrastiveOptions& o, Queues& queues,
                                  at::Generator generator) {
  const int64_t n_l = in.labels.size(0);
  const int64_t d = in.rep.size(1), h = in.rep.size(2), w = in.rep.size(3);
  const int64_t classes = in.prob_teacher.size(1);
  at::Tensor low_mask, high_mask, label_l_small, label_u_small;
  {
    at::NoGradGuard no_grad;
    at::Tensor valid_u = in.pseudo.ne(o.ignore_index);
    at::Tensor low_entropy = valid_u.to(at::kFloat), high_entropy = valid_u.to(at::kFloat);
    if (in.reliable_u.defined() && in.unreliable_u.defined()) {
      low_entropy = in.reliable_u.to(at::kFloat);
      high_entropy = in.unreliable_u.to(at::kFloat);
    } else if (valid_u.any().item<bool>()) {
      at::Tensor ent = in.entropy.masked_select(valid_u);
      low_entropy = in.entropy.le(Percentile(ent, in.alpha)).logical_and(valid_u).to(at::kFloat);
      high_entropy = in.entropy.ge(Percentile(ent, 100 - in.alpha)).logical_and(valid_u).to(at::kFloat);
    }
    at::Tensor valid_l = in.labels.ne(o.ignore_index).to(at::kFloat).unsqueeze(1);
    low_mask = at::upsample_nearest2d(at::cat({valid_l, low_entropy.unsqueeze(1)}), {h, w});
    high_mask = o.negative_high_entropy ? at::cat({valid_l, high_entropy.unsqueeze(1)})
                                        : at::cat({valid_l, at::ones_like(high_entropy).unsqueeze(1)});
    high_mask = at::upsample_nearest2d(high_mask, {h, w});
    label_l_small = at::upsample_nearest2d(OneHot(in.labels, classes, o.ignore_index), {h, w});
    label_u_small = at::upsample_nearest2d(OneHot(in.pseudo, classes, o.ignore_index), {h, w});
  }
  at::Tensor prob_l = in.prob_teacher.slice(0, 0, n_l), prob_u = in.prob_teacher.slice(0, n_l);
  at::Tensor low_valid_pixel = at::cat({label_l_small, label_u_small}) * low_mask;
  at::Tensor high_valid_pixel = at::cat({label_l_small, label_u_small}) * high_mask;
  at::Tensor rep = in.rep.permute({0, 2, 3, 1});
  at::Tensor rep_teacher = in.rep_teacher.detach().permute({0, 2, 3, 1});
  at::Tensor prob_indices_l = std::get<1>(prob_l.sort(1, true)).permute({0, 2, 3, 1});
  at::Tensor prob_indices_u = std::get<1>(prob_u.sort(1, true)).permute({0, 2, 3, 1});
  at::Tensor prob = at::cat({prob_l, prob_u});
  at::Tensor valid_l_small = label_l_small.sum(1).gt(0);

  ContrastiveResult r;
  std::vector<at::Tensor> anchor_feats, prototypes;
  std::vector<int64_t> valid;
  for (int64_t i = 0; i < classes; ++i) {
    at::Tensor low_seg = low_valid_pixel.select(1, i).to(at::kBool);
    at::Tensor high_seg = high_valid_pixel.select(1, i).to(at::kBool);
    at::Tensor prob_seg = prob.select(1, i);
    at::Tensor mask_low = prob_seg.gt(o.current_class_threshold).logical_and(low_seg);
    anchor_feats.push_back(rep.index({mask_low}));
    prototypes.push_back(rep_teacher.index({low_seg}).mean(0, true));
    at::Tensor class_mask_u = prob_indices_u.slice(3, o.low_rank, o.high_rank).eq(i).sum(3).to(at::kBool);
    at::Tensor class_mask_l = prob_indices_l.slice(3, 0, o.low_rank).eq(i).sum(3).to(at::kBool);
    at::Tensor not_c = label_l_small.select(1, i).eq(0);
    at::Tensor negative_mask;
    if (o.paper_negatives) {
      at::Tensor high_l = high_mask.slice(0, 0, n_l).squeeze(1).to(at::kBool), high_u = high_mask.slice(0, n_l).squeeze(1).to(at::kBool);
      negative_mask = at::cat({class_mask_l.logical_and(not_c).logical_and(valid_l_small).logical_and(high_l),
                               class_mask_u.logical_and(high_u)})
                          .logical_and(prob_seg.lt(o.current_class_negative_threshold));
    } else {
      at::Tensor mask_high = prob_seg.lt(o.current_class_negative_threshold).logical_and(high_seg);
      negative_mask = mask_high.logical_and(at::cat({class_mask_l.logical_and(not_c), class_mask_u}));
    }
    at::Tensor keys = rep_teacher.index({negative_mask});
    r.enqueued.push_back(keys.size(0));
    at::Tensor& queue = queues.keys[i];
    queue = queue.defined() && queue.numel() > 0 ? at::cat({queue, keys}) : keys.clone();
    if (queue.size(0) > queues.capacity[i]) queue = queue.slice(0, queue.size(0) - queues.capacity[i]).clone();
    if (low_seg.sum().item<int64_t>() > 0) valid.push_back(i);
  }
  r.valid_classes = static_cast<int64_t>(valid.size());
  if (valid.size() <= 1) {
    r.loss = in.rep.sum() * 0.0;
    return r;
  }
  at::Tensor loss = in.rep.sum() * 0.0;
  for (size_t k = 0; k < valid.size(); ++k) {
    const int64_t a = o.reference_indexing ? static_cast<int64_t>(k) : valid[k];
    const int64_t qc = valid[k];
    at::Tensor& queue = queues.keys[qc];
    if (anchor_feats[a].size(0) == 0 || !queue.defined() || queue.size(0) == 0) continue;
    at::Tensor idx = at::randint(anchor_feats[a].size(0), {o.num_queries}, generator, at::TensorOptions().dtype(at::kLong));
    at::Tensor anchor = anchor_feats[a].index_select(0, idx.to(anchor_feats[a].device()));
    at::Tensor neg_idx = at::randint(queue.size(0), {o.num_queries * o.num_negatives}, generator, at::TensorOptions().dtype(at::kLong));
    at::Tensor negative = queue.index_select(0, neg_idx.to(queue.device())).reshape({o.num_queries, o.num_negatives, d});
    at::Tensor positive = prototypes[a].unsqueeze(0).repeat({o.num_queries, 1, 1});
    at::Tensor all = at::cat({positive, negative}, 1);
    at::Tensor logits = at::cosine_similarity(anchor.unsqueeze(1), all, 2);
    loss = loss + at::cross_entropy_loss(logits / o.temperature, at::zeros({o.num_queries}, at::TensorOptions().dtype(at::kLong).device(logits.device())));
    ++r.processed_classes;
  }
  r.loss = loss / static_cast<double>(valid.size());
  return r;
}

}  // namespace u2pl::loss::composite
