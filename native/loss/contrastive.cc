#include "loss/contrastive.h"

#include <cmath>

#include <ATen/ATen.h>

#include "loss/gather_dot.h"
#include "loss/percentile.h"

namespace u2pl::loss {
namespace {

// ATen's legacy nearest index: min(floor(dst * (float)in / out), in - 1).
at::Tensor NearestIndex(int64_t in, int64_t out) {
  std::vector<int64_t> idx(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) idx[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * scale)), in - 1);
  return at::tensor(idx, at::TensorOptions().dtype(at::kLong));
}

// Rows (k x D) of the pixels `index` (flat over N x h x w) from an N x D x (h*w) tensor, gathered
// directly (autograd scatters the gradient back the same way).
at::Tensor PixelRows(const at::Tensor& ndp, const at::Tensor& index, int64_t hw) {
  using at::indexing::Slice;
  return ndp.index({index.div(hw, "floor"), Slice(), index.remainder(hw)});
}

}  // namespace

at::Tensor NearestDownsample(const at::Tensor& maps, int64_t h, int64_t w) {
  at::Tensor iy = NearestIndex(maps.size(1), h).to(maps.device());
  at::Tensor ix = NearestIndex(maps.size(2), w).to(maps.device());
  return maps.index_select(1, iy).index_select(2, ix);
}

ContrastiveResult ContrastiveLoss(const ContrastiveInputs& in, const ContrastiveOptions& o, MemoryBank& bank,
                                  at::Generator generator) {
  const int64_t n_l = in.labels.size(0), n_u = in.pseudo.size(0);
  const int64_t n = in.rep.size(0), d = in.rep.size(1), h = in.rep.size(2), w = in.rep.size(3);
  const int64_t classes = in.prob_teacher.size(1);
  TORCH_CHECK(n == n_l + n_u && in.rep_teacher.sizes() == in.rep.sizes() && in.prob_teacher.size(0) == n,
              "contrastive loss: rep, rep_teacher and prob_teacher must cover the labeled + unlabeled batch");
  TORCH_CHECK(bank.num_classes() == classes && bank.dim() == d, "memory bank has ", bank.num_classes(), " classes of dim ",
              bank.dim(), ", the loss needs ", classes, " of dim ", d);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(in.rep.device());

  ContrastiveResult r;
  at::Tensor low_valid, anchor_ok, negative_ok, prototypes, counts;
  {
    at::NoGradGuard no_grad;
    // Entropy masks over the valid unlabeled pixels at full resolution (§10.2).
    at::Tensor valid_u = in.pseudo.ne(o.ignore_index);
    at::Tensor low_u = valid_u, high_u = o.negative_high_entropy ? valid_u : at::ones_like(valid_u);
    if (valid_u.any().item<bool>()) {
      low_u = in.entropy.le(MaskedPercentile(in.entropy, valid_u, in.alpha)).logical_and_(valid_u);
      if (o.negative_high_entropy)
        high_u = in.entropy.ge(MaskedPercentile(in.entropy, valid_u, 100 - in.alpha)).logical_and_(valid_u);
    }
    at::Tensor valid_l = in.labels.ne(o.ignore_index);
    at::Tensor low = NearestDownsample(at::cat({valid_l, low_u}), h, w).reshape({-1});    // A
    at::Tensor high = NearestDownsample(at::cat({valid_l, high_u}), h, w).reshape({-1});  // U
    at::Tensor label = NearestDownsample(at::cat({in.labels, in.pseudo}).to(at::kLong), h, w).reshape({-1});
    label.masked_fill_(label.ge(classes).logical_or_(label.lt(0)), -1);  // ignore -> no class

    // Everything per (pixel, class) at once: M x C masks instead of a loop over classes.
    const int64_t m = n * h * w;
    at::Tensor q = in.prob_teacher.permute({0, 2, 3, 1}).reshape({m, classes});
    at::Tensor order = std::get<1>(q.sort(1, /*descending=*/true));
    at::Tensor rank = at::empty_like(order).scatter_(1, order, at::arange(classes, long_opts).expand({m, classes}));
    at::Tensor onehot = label.unsqueeze(1).eq(at::arange(classes, long_opts));   // M x C
    at::Tensor is_labeled = at::arange(m, long_opts).lt(n_l * h * w).unsqueeze(1);

    low_valid = onehot.logical_and(low.unsqueeze(1));  // L_c
    anchor_ok = low_valid.logical_and(q.gt(o.current_class_threshold));
    at::Tensor window_u = rank.ge(o.low_rank).logical_and_(rank.lt(o.high_rank));
    at::Tensor window_l = rank.lt(o.low_rank).logical_and_(onehot.logical_not());
    at::Tensor window = at::where(is_labeled, window_l, window_u);
    if (o.paper_negatives) {
      // Labeled: valid pixels with GT != c and rank(c) < r_l; unlabeled: unreliable pixels with rank(c) in [r_l, r_h).
      at::Tensor labeled_ok = label.ge(0).logical_and(high).unsqueeze(1);
      negative_ok = at::where(is_labeled, labeled_ok, high.unsqueeze(1)).logical_and(window);
    } else {
      negative_ok = onehot.logical_and(high.unsqueeze(1)).logical_and_(window);  // H_c within the class window
    }
    negative_ok.logical_and_(q.lt(o.current_class_negative_threshold));

    // Prototype of each class: the mean teacher embedding over its reliable pixels, as one batched
    // product on the N x D x (h*w) layout (no permuted copy of the representations).
    const int64_t hw = h * w;
    at::Tensor rep_t = in.rep_teacher.detach().reshape({n, d, hw});
    counts = low_valid.sum(0);
    prototypes = at::bmm(rep_t, low_valid.view({n, hw, classes}).to(rep_t.scalar_type())).sum(0).t() /
                 counts.unsqueeze(1).to(rep_t.scalar_type());  // C x D
    counts = counts.cpu();

    // Enqueue this step's negatives of every class before any sampling (§10.4).
    at::Tensor pixels = negative_ok.t().nonzero().select(1, 1);  // sorted by class, then pixel
    at::Tensor keys = PixelRows(rep_t, pixels, hw);
    at::Tensor per_class = negative_ok.sum(0).cpu();
    r.enqueued.assign(per_class.data_ptr<int64_t>(), per_class.data_ptr<int64_t>() + classes);
    int64_t offset = 0;
    for (int64_t c = 0; c < classes; ++c) {
      if (r.enqueued[c] > 0) bank.Append(c, keys.slice(0, offset, offset + r.enqueued[c]));
      offset += r.enqueued[c];
    }
  }

  std::vector<int64_t> valid;
  const int64_t* cnt = counts.data_ptr<int64_t>();
  for (int64_t c = 0; c < classes; ++c)
    if (cnt[c] > 0) valid.push_back(c);
  r.valid_classes = static_cast<int64_t>(valid.size());
  at::Tensor zero = in.rep.sum() * 0.0;  // keeps rep in the graph when nothing contributes
  if (valid.size() <= 1) {
    r.loss = zero;
    return r;
  }

  // Draw every processed class's anchors and negatives first (in class order, as the reference
  // does), then gather all anchors in one indexing op: one scatter in the backward, not one per class.
  struct Job {
    int64_t anchor_class, queue_class;
    at::Tensor pixels, keys;  // anchor pixels (N_q); physical bank rows (N_q x N_n)
  };
  std::vector<Job> jobs;
  at::Tensor anchor_counts = anchor_ok.sum(0).cpu();
  for (size_t i = 0; i < valid.size(); ++i) {
    // Reference indexing [Q]: anchors and prototype of class i, negatives of the i-th valid class.
    const int64_t anchor_class = o.reference_indexing ? static_cast<int64_t>(i) : valid[i];
    const int64_t queue_class = valid[i];
    const int64_t n_anchor = anchor_counts.data_ptr<int64_t>()[anchor_class];
    if (n_anchor == 0 || bank.size(queue_class) == 0) continue;
    at::Tensor candidates = anchor_ok.select(1, anchor_class).nonzero().squeeze(1);
    at::Tensor pick = at::randint(n_anchor, {o.num_queries}, generator, at::TensorOptions().dtype(at::kLong));
    at::Tensor draw = at::randint(bank.size(queue_class), {o.num_queries * o.num_negatives}, generator,
                                  at::TensorOptions().dtype(at::kLong));
    jobs.push_back({anchor_class, queue_class, candidates.index_select(0, pick.to(candidates.device())),
                    bank.PhysicalIndex(queue_class, draw).view({o.num_queries, o.num_negatives})});
  }
  at::Tensor total = zero;
  if (!jobs.empty()) {
    std::vector<at::Tensor> pixels;
    for (const auto& job : jobs) pixels.push_back(job.pixels);
    at::Tensor anchors_all = PixelRows(in.rep.reshape({n, d, h * w}), at::cat(pixels), h * w);
    for (size_t k = 0; k < jobs.size(); ++k) {
      const Job& job = jobs[k];
      at::Tensor anchors = anchors_all.slice(0, k * o.num_queries, (k + 1) * o.num_queries);
      const at::Tensor& storage = bank.Storage(job.queue_class);
      at::Tensor neg_dots, neg_norms;
      if (anchors.is_cpu() && anchors.scalar_type() == at::kFloat) {
        GatherDotResult g = GatherDot(anchors, storage, job.keys);
        neg_dots = g.dots;
        neg_norms = g.key_norms;
      } else {
        at::Tensor negatives = storage.index_select(0, job.keys.reshape({-1})).view({o.num_queries, o.num_negatives, d}).to(anchors.scalar_type());
        neg_dots = at::bmm(negatives, anchors.unsqueeze(2)).squeeze(2);
        neg_norms = negatives.norm(2, 2);
      }
      at::Tensor prototype = prototypes[job.anchor_class].to(anchors.scalar_type());
      at::Tensor anchor_norms = anchors.norm(2, 1, true);  // N_q x 1
      at::Tensor pos = at::mv(anchors, prototype).unsqueeze(1) / (anchor_norms * prototype.norm()).clamp_min(1e-8);
      at::Tensor neg = neg_dots / (anchor_norms * neg_norms).clamp_min(1e-8);
      at::Tensor logits = at::cat({pos, neg}, 1) / o.temperature;
      total = total + (at::logsumexp(logits, 1) - logits.select(1, 0)).mean();
      ++r.processed_classes;
    }
  }
  r.loss = total / static_cast<double>(valid.size());
  return r;
}

}  // namespace u2pl::loss
