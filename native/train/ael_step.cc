// One step of the AEL variant (u2pl-ael-method.md A10): adaptive copy-paste into the labeled batch,
// the teacher's passes (train on the labeled batch, eval on the unlabeled images and their bank
// partners, train on the mixed images), adaptive CutMix, two student passes, the class-sampled
// consistency loss on both, the contrastive loss from its start epoch, SGD and the EMA.
#include <optional>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/GradMode.h>

#include "ael/adaptive_cutmix.h"
#include "ael/consistency.h"
#include "ael/copy_paste.h"
#include "loss/percentile.h"
#include "model/model_io.h"
#include "train/phase_clock.h"
#include "train/trainer.h"

namespace u2pl::train {
namespace {

at::Tensor Upsample(const at::Tensor& logits, int64_t h, int64_t w) { return at::upsample_bilinear2d(logits, {h, w}, true); }

}  // namespace

StepResult Trainer::AelStep(const StepInputs& in) {
  TORCH_CHECK(ael_ && teacher_, "an AEL step needs a trainer built with the AEL options");
  const AelOptions& ao = options_.ael;
  c10::AutoGradMode grad_mode(true);
  StepResult r;
  StepNumbers n;
  PhaseClock clock(r.phases);
  using P = StepPhases;
  std::optional<model::SyncBatchNormScope> sync;
  if (replica_ops_ && options_.sync_bn) sync.emplace(replica_ops_.get());
  SetLearningRates(in.lr_backbone, in.lr_head);
  if (in.copy_teacher) model::EmaUpdate(*teacher_, *student_, 0.0);  // Q9 fixed: the teacher starts as the student

  at::Tensor x_l = in.labeled_images.to(device_, at::kFloat).contiguous();
  at::Tensor y_l = in.labels.to(device_, at::kLong).contiguous();
  const int64_t n_l = x_l.size(0), h = x_l.size(2), w = x_l.size(3);
  TORCH_CHECK(y_l.sizes() == at::IntArrayRef({n_l, h, w}), "labels must be B x H x W matching the labeled images");
  const int64_t ignore = options_.supervised.ignore_index;
  if (in.partner_images.defined() && !in.plan.paste_classes.empty()) {
    const std::vector<bool> present = ao.partner_by_label_sum ? ael::PartnerPresentByLabelSum(in.partner_labels) : in.has_partner;
    r.pasted = ael::CopyPaste(x_l, y_l, in.partner_images.to(device_, at::kFloat), in.partner_labels.to(device_, at::kLong), present,
                              in.plan.paste_classes);
  }
  at::Tensor x_both = in.unlabeled_images.to(device_, at::kFloat);
  const int64_t k = x_both.size(0) / 2;
  TORCH_CHECK(k >= 1 && x_both.size(0) == 2 * k && x_both.size(2) == h && x_both.size(3) == w,
              "an AEL step's unlabeled images are the kept images and their bank partners (2k rows at the labeled size), got ",
              x_both.sizes());
  TORCH_CHECK(static_cast<int64_t>(in.unlabeled_index.size()) == 2 * k && static_cast<int64_t>(in.plan.mix_classes.size()) == k,
              "an AEL step needs the unlabeled images' indices and one class per kept image");
  clock.Mark(&P::mixing);

  // Student pass 1: the labeled batch on its own (its BN statistics are the labeled batch's).
  model::ModelOutput out_l = Forward(student_, x_l, true);
  clock.Mark(&P::student_forward);
  at::Tensor sup = loss::SupervisedLoss(out_l.pred, out_l.aux, y_l, options_.supervised);
  clock.Mark(&P::losses);

  at::Tensor x_mix, logits_l, confidence_l, target_l, rep_teacher_l, rep_teacher_u, prob_l, prob_u, argmax_mix, truth_mix;
  ael::ConsistencyTarget unlabeled;
  {
    at::NoGradGuard no_grad;
    model::ModelOutput t_l = Forward(teacher_, x_l, true);
    logits_l = Upsample(t_l.pred, h, w);
    rep_teacher_l = t_l.rep;
    clock.Mark(&P::teacher_forward);
    at::Tensor logits_u = Upsample(Forward(teacher_, x_both, false).pred, h, w);
    clock.Mark(&P::pseudo_labels);
    at::Tensor own = logits_u.slice(0, 0, k), partner = logits_u.slice(0, k);
    at::Tensor predicted = logits_u.argmax(1).cpu();
    const double area = static_cast<double>(ao.square_area ? w * w : h * w);  // Q15: the reference squares the last side
    std::vector<at::Tensor> masks;
    for (int64_t i = 0; i < k; ++i) {
      std::optional<ael::Box> box = ael::ComponentBox(predicted[k + i], in.plan.mix_classes[i], ao.box_min_area * area, generator_);
      if (box) ++r.component_boxes;
      masks.push_back(ael::BoxMask(box ? *box : ael::RandomBox(h, w, generator_), h, w, x_both.options()));
    }
    // A5.5: both images' bank columns, before mixing (Q5 fixed: every rank's, in rank order).
    const int64_t classes = logits_u.size(1);
    at::Tensor index = at::tensor(in.unlabeled_index, at::TensorOptions().dtype(at::kLong));
    at::Tensor presence = at::zeros({2 * k, classes}, at::TensorOptions().dtype(at::kLong));
    for (int64_t i = 0; i < 2 * k; ++i) {
      const std::vector<bool> seen = ael::ClassPresence(predicted[i], classes, ao.bank_min_area * area);
      for (int64_t c = 0; c < classes; ++c) presence[i][c] = seen[c] ? 1 : 0;
    }
    const bool shared = ael_->options().shared_across_ranks && options_.communicator;
    const std::vector<at::Tensor> indices = shared ? options_.communicator->AllGather(index) : std::vector<at::Tensor>{index};
    const std::vector<at::Tensor> presences = shared ? options_.communicator->AllGather(presence) : std::vector<at::Tensor>{presence};
    for (size_t q = 0; q < indices.size(); ++q)
      for (int64_t i = 0; i < indices[q].size(0); ++i) {
        std::vector<bool> seen(classes);
        for (int64_t c = 0; c < classes; ++c) seen[c] = presences[q][i][c].item<int64_t>() != 0;
        ael_->UpdateBank(indices[q][i].item<int64_t>(), seen);
      }
    at::Tensor mask = at::stack(masks);  // true: the bank partner's pixels
    x_mix = at::where(mask.unsqueeze(1), x_both.slice(0, k), x_both.slice(0, 0, k));
    at::Tensor logits_mix = at::where(mask.unsqueeze(1), partner, own);
    argmax_mix = logits_mix.argmax(1);
    if (in.unlabeled_truth.defined()) {
      at::Tensor truth = in.unlabeled_truth.to(device_, at::kLong);
      truth_mix = at::where(mask, truth.slice(0, k), truth.slice(0, 0, k));
    }
    r.mixed = true;
    clock.Mark(&P::mixing);
    // Targets: the labeled term against the train-mode teacher's argmax (nothing ignored), the
    // unlabeled term against the mixed eval-mode logits with an entropy tail ignored.
    std::tie(confidence_l, target_l) = at::softmax(logits_l, 1).max(1);
    unlabeled = ael::PseudoLabelsWithEntropyIgnore(logits_mix, in.consistency_percent, ao.ignore_confident, ignore);
    rep_teacher_u = Forward(teacher_, x_mix, true).rep;  // train mode, its representation only
    const int64_t rh = rep_teacher_l.defined() ? rep_teacher_l.size(2) : out_l.pred.size(2);
    const int64_t rw = rep_teacher_l.defined() ? rep_teacher_l.size(3) : out_l.pred.size(3);
    prob_l = at::softmax(Upsample(logits_l, rh, rw), 1);
    prob_u = at::softmax(Upsample(logits_mix, rh, rw), 1);
    clock.Mark(&P::teacher_forward);
  }

  // Student pass 2: the mixed images on their own.
  model::ModelOutput out_u = Forward(student_, x_mix, true);
  clock.Mark(&P::student_forward);
  {
    at::NoGradGuard no_grad;
    ael::ClassConfidence m = ael::MeasureClassConfidence(at::softmax(Upsample(out_l.pred.detach(), h, w), 1), y_l, ignore);
    if (ael_->options().shared_across_ranks && options_.communicator) {
      at::Tensor both = at::cat({m.sums, m.counts}).contiguous();
      AllReduceSum(both);
      m = ael::ClassConfidence::FromSums(both.slice(0, 0, m.sums.size(0)), both.slice(0, m.sums.size(0)));
    }
    ael_->UpdateConfidence(m);
  }
  const at::Tensor kappa = ael_->confidence();
  at::Tensor cons = ael::ConsistencyLoss(Upsample(out_l.pred, h, w), confidence_l, target_l, kappa, ao.consistency, generator_) +
                    ael::ConsistencyLoss(Upsample(out_u.pred, h, w), unlabeled.confidence, unlabeled.target, kappa, ao.consistency,
                                         generator_);
  const double R = ao.replicas;
  at::Tensor loss = sup / R + cons * (ao.consistency_weight / R);
  n.supervised = sup;
  n.unsupervised = cons;
  const at::Tensor valid_u = unlabeled.target.ne(ignore);
  r.unsup_valid = valid_u.numel();  // the share of mixed pixels with a pseudo-label is kept / valid
  n.kept = valid_u.sum();
  if (truth_mix.defined()) {
    // Metrics only: the mixed pseudo-labels against the unlabeled images' own labels.
    CountPseudoLabels(argmax_mix, truth_mix, valid_u, ignore, out_u.pred.size(1), n);
  }
  if (options_.contrastive && out_l.rep.defined()) {
    at::Tensor rep = at::cat({out_l.rep, out_u.rep});
    if (in.contrastive_on) {
      at::Tensor reliable, unreliable;
      {
        // A8: fixed entropy percentiles over all pixels; the masks keep pixels with a pseudo-label.
        at::NoGradGuard no_grad;
        const std::vector<at::Tensor> t = loss::MaskedPercentiles(unlabeled.entropy, at::ones_like(valid_u),
                                                                  {ao.anchor_percentile, ao.negative_percentile});
        reliable = unlabeled.entropy.le(t[0]).logical_and_(valid_u);
        unreliable = options_.contrastive_options.negative_high_entropy ? unlabeled.entropy.ge(t[1]).logical_and_(valid_u)
                                                                        : at::ones_like(valid_u);
      }
      loss::ContrastiveInputs ci{rep, at::cat({rep_teacher_l, rep_teacher_u}), at::cat({prob_l, prob_u}), y_l, unlabeled.target,
                                 unlabeled.entropy, 0, KeyGatherer(), reliable, unreliable};
      loss::ContrastiveResult c = loss::ContrastiveLoss(ci, options_.contrastive_options, *bank_, generator_);
      loss = loss + c.loss * (options_.contrastive_weight / (R * R));
      n.contrastive = c.loss;
      r.valid_classes = c.valid_classes;
    } else {
      loss = loss + rep.sum() * 0.0;  // the representation head stays in the graph
    }
  }
  clock.Mark(&P::losses);
  Finish(loss, n, r, in.stop_requested, &teacher_params_, in.ema_decay, clock);  // SGD, then the teacher's EMA in the same pass
  if (options_.teacher_bn_ema && !r.skipped) model::EmaUpdateBuffers(*teacher_, *student_, in.ema_decay);
  r.next_plan = ael_->Plan(in.next_plan_seed);
  clock.Mark(&P::other);
  return r;
}

}  // namespace u2pl::train
