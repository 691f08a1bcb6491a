#include "loss/contrastive.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "loss/contrastive_kernels.h"
#include "loss/info_nce.h"
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

  ContrastiveResult r;
  at::Tensor anchor_ok, prototypes, counts;
  {
    at::NoGradGuard no_grad;
    // Entropy masks over the valid unlabeled pixels at full resolution (§10.2).
    at::Tensor valid_u = in.pseudo.ne(o.ignore_index);
    at::Tensor low_u = valid_u, high_u = o.negative_high_entropy ? valid_u : at::ones_like(valid_u);
    if (in.reliable_u.defined() && in.unreliable_u.defined()) {
      low_u = in.reliable_u.to(at::kBool);
      high_u = in.unreliable_u.to(at::kBool);
    } else if (valid_u.any().item<bool>()) {
      const std::vector<at::Tensor> t = MaskedPercentiles(
          in.entropy, valid_u, o.negative_high_entropy ? std::vector<double>{in.alpha, 100 - in.alpha} : std::vector<double>{in.alpha});
      low_u = in.entropy.le(t[0]).logical_and_(valid_u);
      if (o.negative_high_entropy) high_u = in.entropy.ge(t[1]).logical_and_(valid_u);
    }
    at::Tensor valid_l = in.labels.ne(o.ignore_index);
    at::Tensor low = NearestDownsample(at::cat({valid_l, low_u}), h, w).reshape({-1});    // A
    at::Tensor high = NearestDownsample(at::cat({valid_l, high_u}), h, w).reshape({-1});  // U
    at::Tensor label = NearestDownsample(at::cat({in.labels, in.pseudo}).to(at::kLong), h, w).reshape({-1});
    label.masked_fill_(label.ge(classes).logical_or_(label.lt(0)), -1);  // ignore -> no class

    // Every (class, pixel) mask in one pass instead of a loop over classes.
    const int64_t m = n * h * w, hw = h * w;
    at::Tensor q = in.prob_teacher.permute({0, 2, 3, 1}).reshape({m, classes});
    PixelClassMasks masks = ClassMasks(q, label, low, high, n_l * hw, o);
    anchor_ok = masks.anchor_ok;

    // Prototype of each class: the mean teacher embedding over its reliable pixels (L_c: class c
    // and in A; one class per pixel, so a segment sum).
    at::Tensor rep_t = in.rep_teacher.detach().reshape({n, d, hw});
    at::Tensor reliable = label.masked_fill(low.logical_not(), -1);
    counts = at::bincount(reliable.add(1), {}, classes + 1).slice(0, 1);
    prototypes = ClassSums(rep_t, reliable, classes) / counts.unsqueeze(1).to(rep_t.scalar_type());  // C x D
    counts = counts.cpu();

    // Enqueue this step's negatives of every class before any sampling (§10.4).
    at::Tensor pixels = masks.negative_ok.nonzero().select(1, 1);  // sorted by class, then pixel
    at::Tensor keys = GatherPixelRows(rep_t, pixels);
    at::Tensor per_class = masks.negative_ok.sum(1).cpu();
    r.enqueued.assign(per_class.data_ptr<int64_t>(), per_class.data_ptr<int64_t>() + classes);
    // One process: this step's keys. Data parallel: every rank's, class by class in rank order
    // (the reference gathers each class's keys from all replicas before enqueueing them).
    std::vector<std::pair<at::Tensor, at::Tensor>> ranks =
        in.gather_keys ? in.gather_keys(keys, per_class) : std::vector<std::pair<at::Tensor, at::Tensor>>{{keys, per_class}};
    std::vector<int64_t> offset(ranks.size(), 0);
    for (int64_t c = 0; c < classes; ++c) {
      std::vector<at::Tensor> parts;
      for (size_t k = 0; k < ranks.size(); ++k) {
        const int64_t count = ranks[k].second[c].item<int64_t>();
        if (count > 0) parts.push_back(ranks[k].first.slice(0, offset[k], offset[k] + count));
        offset[k] += count;
      }
      if (!parts.empty()) bank.Append(c, parts.size() == 1 ? parts[0] : at::cat(parts));
    }
  }

  std::vector<int64_t> valid;
  const int64_t* cnt = counts.data_ptr<int64_t>();
  for (int64_t c = 0; c < classes; ++c)
    if (cnt[c] > 0) valid.push_back(c);
  r.valid_classes = static_cast<int64_t>(valid.size());
  auto zero = [&] { return in.rep.sum() * 0.0; };  // keeps rep in the graph when nothing contributes
  if (valid.size() <= 1) {
    r.loss = zero();
    return r;
  }

  // Draw every processed class's anchors and negatives first (in class order, as the reference
  // does), then gather all anchors in one op and run every InfoNCE term in one call: the
  // backward has one gather node and one InfoNCE node, not a slice, a term and an add per class.
  std::vector<at::Tensor> pixels;  // anchor pixels of each term
  std::vector<InfoNceTerm> terms;
  at::Tensor candidates = anchor_ok.nonzero().select(1, 1);  // by class, then pixel
  at::Tensor anchor_counts = anchor_ok.sum(1).cpu();
  const int64_t* n_anchors = anchor_counts.data_ptr<int64_t>();
  std::vector<int64_t> first(classes + 1, 0);
  for (int64_t c = 0; c < classes; ++c) first[c + 1] = first[c] + n_anchors[c];
  for (size_t i = 0; i < valid.size(); ++i) {
    // Reference indexing [Q]: anchors and prototype of class i, negatives of the i-th valid class.
    const int64_t anchor_class = o.reference_indexing ? static_cast<int64_t>(i) : valid[i];
    const int64_t queue_class = valid[i];
    const int64_t n_anchor = n_anchors[anchor_class];
    if (n_anchor == 0 || bank.size(queue_class) == 0) continue;
    at::Tensor pick = at::randint(n_anchor, {o.num_queries}, generator, at::TensorOptions().dtype(at::kLong));
    at::Tensor draw = at::randint(bank.size(queue_class), {o.num_queries * o.num_negatives}, generator,
                                  at::TensorOptions().dtype(at::kLong));
    at::Tensor own = candidates.slice(0, first[anchor_class], first[anchor_class + 1]);
    pixels.push_back(own.index_select(0, pick.to(own.device())));
    const int64_t begin = terms.empty() ? 0 : terms.back().end;
    terms.push_back({begin, begin + o.num_queries, anchor_class, bank.Storage(queue_class),
                     bank.PhysicalIndex(queue_class, draw).view({o.num_queries, o.num_negatives})});
  }
  if (terms.empty()) {
    r.loss = zero();
    return r;
  }
  at::Tensor anchors = GatherPixelRows(in.rep.reshape({n, d, h * w}), at::cat(pixels));
  at::Tensor total = InfoNceLoss(anchors, prototypes, terms, o.temperature);
  r.processed_classes = static_cast<int64_t>(terms.size());
  r.loss = total / static_cast<double>(valid.size());
  return r;
}

}  // namespace u2pl::loss
