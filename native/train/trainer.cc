#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <optional>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/GradMode.h>

#include "model/model_io.h"
#include "model/state_dict.h"
#include "train/phase_clock.h"
#include "util/autocast.h"

namespace u2pl::train {
namespace {

// Copies the student's parameters (not buffers) into the teacher.
void CopyParameters(model::SegmentationModel& teacher, const model::SegmentationModel& student) {
  model::EmaUpdate(*teacher, *student, 0.0);
}

// SyncBN's view of the process group.
class CommunicatorOps final : public model::CrossReplicaOps {
 public:
  explicit CommunicatorOps(Communicator& c) : c_(c) {}
  int world_size() const override { return c_.world_size(); }
  std::vector<at::Tensor> AllGather(const at::Tensor& t) override { return c_.AllGather(t); }
  void AllReduceSum(at::Tensor& t) override {
    std::vector<at::Tensor> one{t};
    c_.AllReduceSum(one);
  }

 private:
  Communicator& c_;
};

// Seeds that differ by rank (rank 0 keeps the single-process seed): each rank draws its own
// mixing boxes, contrastive samples and dropout masks.
uint64_t RankSeed(uint64_t seed, int rank) { return seed + 1000003ULL * static_cast<uint64_t>(rank); }

std::vector<double> ToVector(const at::Tensor& t) {
  at::Tensor d = t.to(at::kDouble).cpu().contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// Labelled pixels per class, a C-vector on the labels' device (ignore and other out-of-range values
// left out); no host read (a masked_select would need one for its size).
at::Tensor ClassPixels(const at::Tensor& labels, int64_t classes) {
  at::Tensor y = labels.flatten().to(at::kLong);
  at::Tensor bin = at::where((y >= 0).logical_and_(y < classes), y, at::full_like(y, classes));
  return at::zeros({classes + 1}, y.options()).scatter_add_(0, bin, at::ones_like(bin)).slice(0, 0, classes);
}

// The default generator of a CUDA device (dropout masks there), or null on other devices.
std::optional<at::Generator> CudaGenerator(const at::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  return at::globalContext().defaultGenerator(device);
}

at::Tensor GeneratorState(at::Generator g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void SetGeneratorState(at::Generator g, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

// Class-balanced selection of pseudo-labels: each class keeps at most prior[c] of the labelled pixels,
// its most confident ones; the dropped pixels become ignore. Classes a young teacher over-predicts
// stop drowning the others without a pseudo-label being changed to another class.
at::Tensor SelectByPrior(const at::Tensor& pseudo, const at::Tensor& confidence, const at::Tensor& prior, int64_t ignore) {
  const int64_t classes = prior.numel();
  const std::vector<double> share = ToVector(prior);
  const double total = static_cast<double>((pseudo != ignore).sum().item<int64_t>());
  at::Tensor drop = at::zeros_like(pseudo, at::kBool);
  for (int64_t c = 0; c < classes; ++c) {
    const at::Tensor mine = pseudo == c;
    const int64_t count = mine.sum().item<int64_t>();
    const int64_t allowed = static_cast<int64_t>(share[c] * total);
    if (count <= allowed) continue;
    const double threshold = std::get<0>(confidence.masked_select(mine).kthvalue(count - allowed)).item<double>();
    drop.logical_or_(mine.logical_and(confidence <= threshold));
  }
  return pseudo.masked_fill(drop, ignore);
}

}  // namespace

Trainer::Trainer(model::SegmentationModel student, model::SegmentationModel teacher, const TrainerOptions& options)
    : student_(std::move(student)), teacher_(std::move(teacher)), options_(options),
      generator_(at::make_generator<at::CPUGeneratorImpl>(RankSeed(options.seed, options.communicator ? options.communicator->rank() : 0))),
      device_(student_->parameters().front().device()), loss_scale_(options.loss_scaling.enabled ? options.loss_scaling.init_scale : 1.0) {
  TORCH_CHECK(!options.loss_scaling.enabled || (options.loss_scaling.init_scale > 0 && options.loss_scaling.growth_factor > 1 &&
                                                options.loss_scaling.backoff_factor > 0 && options.loss_scaling.backoff_factor < 1 &&
                                                options.loss_scaling.growth_interval >= 1),
              "loss scaling: initScale > 0, growthFactor > 1, 0 < backoffFactor < 1 and growthInterval >= 1 are needed");
  // The reference's groups and order (§5.1): the encoder at lr, then the aux head (if any) and the
  // decoder at lr x m. Checkpoints number the parameters through the groups in this order.
  std::vector<std::vector<at::Tensor>> groups;
  for (const char* prefix : {"encoder.", "auxor.", "decoder."}) {
    std::vector<at::Tensor> params = model::ParametersWithPrefix(*student_, prefix, true);
    if (params.empty()) continue;
    groups.push_back(std::move(params));
    if (teacher_) {
      std::vector<at::Tensor> t = model::ParametersWithPrefix(*teacher_, prefix, true);
      teacher_params_.insert(teacher_params_.end(), t.begin(), t.end());
    }
  }
  optimizer_ = std::make_unique<MomentumSgd>(std::move(groups), options.momentum, options.weight_decay);
  if (options.contrastive) {
    const int64_t classes = student_->options().num_classes;
    std::vector<int64_t> capacity = options.queue_size;
    if (capacity.empty()) {
      capacity.assign(classes, 30000);
      capacity[0] = 50000;
    }
    TORCH_CHECK(static_cast<int64_t>(capacity.size()) == classes, "contrastive.queue_size has ", capacity.size(),
                " entries for ", classes, " classes");
    TORCH_CHECK(student_->options().rep_head, "the contrastive loss needs the representation head (net.decoder.kwargs.rep_head)");
    bank_ = std::make_unique<loss::MemoryBank>(capacity, 256, at::TensorOptions().dtype(at::kFloat).device(device_));
  }
  TORCH_CHECK(!options.ema_model || teacher_, "the EMA model needs a teacher");
  if (options.ael.enabled) {
    TORCH_CHECK(teacher_, "the AEL variant needs a teacher");
    ael::AelStateOptions o = options.ael.state;
    o.classes = student_->options().num_classes;
    ael_ = std::make_unique<ael::AelState>(o, generator_);
  }
  if (options.channels_last) {
    model::SetChannelsLast(*student_, true);
    if (teacher_) model::SetChannelsLast(*teacher_, true);
  }
  if (options.communicator) {
    replica_ops_ = std::make_unique<CommunicatorOps>(*options.communicator);
    reducer_ = std::make_unique<GradientReducer>(optimizer_->parameters(), *options.communicator);
    BroadcastFromRankZero();
    at::manual_seed(RankSeed(options.seed, options.communicator->rank()));  // dropout masks per rank
  }
}

void Trainer::BroadcastFromRankZero() {
  if (!options_.communicator) return;
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> state;
  for (auto* net : {&student_, &teacher_}) {
    if (!*net) continue;
    for (auto& t : (*net)->parameters()) state.push_back(t);
    for (auto& t : (*net)->buffers()) state.push_back(t);
  }
  options_.communicator->Broadcast(state, 0);  // channels-last weights are staged through a contiguous copy
  if (ael_) {
    // kappa starts alike on every rank (the reference seeds its generator alike on all), and so does the bank.
    std::vector<at::Tensor> state{ael_->kappa().clone(), ael_->bank().clone()};
    if (state[1].numel() == 0) state.pop_back();  // (Gloo divides by the element count)
    options_.communicator->Broadcast(state, 0);
    ael_->Restore(state[0], state.size() > 1 ? state[1] : ael_->bank());
  }
  if (bank_) {
    std::vector<at::Tensor> keys;
    for (int64_t c = 0; c < bank_->num_classes(); ++c) {
      at::Tensor size = at::full({1}, bank_->size(c), at::TensorOptions().dtype(at::kLong));
      std::vector<at::Tensor> one{size};
      options_.communicator->Broadcast(one, 0);
      at::Tensor k = rank() == 0 ? bank_->Ordered(c).contiguous() : at::empty({one[0].item<int64_t>(), bank_->dim()}, at::kFloat);
      std::vector<at::Tensor> rows{k};
      if (k.size(0) > 0) options_.communicator->Broadcast(rows, 0);
      if (rank() != 0) bank_->Restore(c, rows[0]);
    }
  }
}

void Trainer::AllReduceSum(at::Tensor& tensor) {
  if (!options_.communicator) return;
  std::vector<at::Tensor> one{tensor};
  options_.communicator->AllReduceSum(one);
}

void Trainer::CountPseudoLabels(const at::Tensor& pseudo, const at::Tensor& truth, const at::Tensor& kept, int64_t ignore,
                                int64_t classes, StepNumbers& n) {
  at::NoGradGuard no_grad;
  const at::Tensor labelled = truth != ignore, right = (pseudo == truth) & labelled;
  const at::Tensor kept_labelled = kept & labelled;
  const at::Tensor none = at::full_like(truth, -1);  // out of range: ClassPixels leaves it out
  n.pl_pixels = labelled.sum();
  n.pl_correct = right.sum();
  n.pl_kept_pixels = kept_labelled.sum();
  n.pl_kept_correct = (right & kept_labelled).sum();
  n.pl_class_truth = ClassPixels(truth, classes);
  n.pl_class_predicted = ClassPixels(at::where(labelled, pseudo, none), classes);
  n.pl_class_right = ClassPixels(at::where(right, truth, none), classes);
}

void Trainer::ReadNumbers(const StepNumbers& n, const at::Tensor& non_finite, StepResult& r, bool stop_requested) {
  // Scalars in a fixed order, then the class vectors (their lengths are alike on every rank: the
  // phase decides), then what the host already knows, so that one all-reduce and one copy cover all.
  const std::vector<const at::Tensor*> scalars{&n.loss, &n.supervised, &n.unsupervised, &n.contrastive, &n.threshold, &n.kept,
                                               &n.pl_pixels, &n.pl_correct, &n.pl_kept_pixels, &n.pl_kept_correct, &non_finite};
  const std::vector<const at::Tensor*> vectors{&n.labeled_class_pixels, &n.teacher_class_mass, &n.pseudo_class_pixels,
                                               &n.pl_class_truth, &n.pl_class_predicted, &n.pl_class_right};
  const auto dopts = at::TensorOptions().dtype(at::kDouble).device(device_);
  std::vector<at::Tensor> parts;
  for (const at::Tensor* t : scalars) parts.push_back(t->defined() ? t->detach().reshape({1}).to(dopts) : at::zeros({1}, dopts));
  std::vector<int64_t> lengths;
  for (const at::Tensor* t : vectors) {
    lengths.push_back(t->defined() ? t->numel() : 0);
    if (t->defined()) parts.push_back(t->detach().flatten().to(dopts));
  }
  const std::vector<double> host{r.mixed ? 1.0 : 0.0, static_cast<double>(r.valid_classes), stop_requested ? 1.0 : 0.0,
                                 static_cast<double>(r.unsup_valid)};
  parts.push_back(at::tensor(host, at::TensorOptions().dtype(at::kDouble)).to(device_));
  at::Tensor all = at::cat(parts);
  AllReduceSum(all);
  const at::Tensor values = all.cpu();
  const double* x = values.data_ptr<double>();
  const double R = world_size();
  // Losses, the threshold, the mixed flag and the class count are means over the ranks; pixel counts are sums.
  r.loss = x[0] / R;
  r.supervised = x[1] / R;
  r.unsupervised = x[2] / R;
  r.contrastive = x[3] / R;
  r.unsup_threshold = x[4] / R;
  r.unsup_kept = static_cast<int64_t>(x[5]);
  r.pl_pixels = static_cast<int64_t>(x[6]);
  r.pl_correct = static_cast<int64_t>(x[7]);
  r.pl_kept_pixels = static_cast<int64_t>(x[8]);
  r.pl_kept_correct = static_cast<int64_t>(x[9]);
  r.skipped = x[10] > 0;
  size_t offset = scalars.size();
  std::vector<double>* outs[] = {&r.labeled_class_pixels, &r.teacher_class_mass, &r.pseudo_class_pixels,
                                 &r.pl_class_truth, &r.pl_class_predicted, &r.pl_class_right};
  for (size_t v = 0; v < vectors.size(); ++v) {
    outs[v]->assign(x + offset, x + offset + lengths[v]);
    offset += lengths[v];
  }
  r.mixed = x[offset] / R >= 0.5;
  r.valid_classes = static_cast<int64_t>(std::llround(x[offset + 1] / R));
  r.stop = x[offset + 2] > 0;
  r.unsup_valid = static_cast<int64_t>(x[offset + 3]);
}

void Trainer::BroadcastBnBuffers() {
  // Floating buffers only (running mean and variance): the batch counters are alike everywhere.
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> buffers, flat;
  for (auto* net : {&student_, &teacher_})
    if (*net)
      for (auto& b : (*net)->buffers())
        if (b.is_floating_point()) {
          buffers.push_back(b);
          flat.push_back(b.flatten());
        }
  if (buffers.empty()) return;
  std::vector<at::Tensor> wire{at::cat(flat)};
  options_.communicator->Broadcast(wire, 0);
  int64_t offset = 0;
  for (auto& b : buffers) {
    b.copy_(wire[0].narrow(0, offset, b.numel()).view_as(b));
    offset += b.numel();
  }
}

void Trainer::Finish(const at::Tensor& loss, const StepNumbers& n, StepResult& r, bool stop_requested,
                     const std::vector<at::Tensor>* ema, double ema_decay, PhaseClock& clock) {
  const bool scaling = options_.loss_scaling.enabled;
  optimizer_->ZeroGrad();
  if (reducer_) reducer_->Prepare();
  (scaling ? loss * loss_scale_ : loss).backward();
  if (reducer_) reducer_->Finish();  // gradients averaged over the ranks (bucketed, overlapping the backward)
  clock.Mark(&StepPhases::backward);
  at::Tensor non_finite;
  if (scaling) {
    // A sum over every gradient is finite unless some element is inf or NaN (alike on every rank:
    // the gradients were averaged); it travels with the step's numbers, read once below.
    c10::AutoGradMode no_grad(false);
    std::vector<at::Tensor> sums;
    for (const auto& p : optimizer_->parameters())
      if (p.grad().defined()) sums.push_back(p.grad().sum(at::kDouble));
    if (!sums.empty()) non_finite = at::stack(sums).sum().isfinite().logical_not();
  }
  StepNumbers numbers = n;
  numbers.loss = loss;
  ReadNumbers(numbers, non_finite, r, stop_requested);
  clock.Mark(&StepPhases::other);
  if (!r.skipped) optimizer_->Step(ema, ema_decay, scaling ? 1.0 / loss_scale_ : 1.0);
  clock.Mark(&StepPhases::optimizer);
  if (scaling) {
    // GradScaler.update(): back off on an overflow, grow after growth_interval good steps.
    const LossScaling& ls = options_.loss_scaling;
    if (r.skipped) {
      loss_scale_ *= ls.backoff_factor;
      growth_tracker_ = 0;
    } else if (++growth_tracker_ >= ls.growth_interval) {
      // As _amp_update_scale_: the scale is a float32 and grows only while that stays finite.
      if (std::isfinite(static_cast<float>(loss_scale_ * ls.growth_factor))) loss_scale_ *= ls.growth_factor;
      growth_tracker_ = 0;
    }
  }
  r.loss_scale = loss_scale_;
  if (options_.communicator && !options_.sync_bn) BroadcastBnBuffers();
  clock.Mark(&StepPhases::other);
}

void Trainer::SetLearningRates(double backbone, double head) {
  for (size_t g = 0; g < optimizer_->num_groups(); ++g) optimizer_->set_lr(g, g == 0 ? backbone : head);
}

model::ModelOutput Trainer::Forward(model::SegmentationModel& net, const at::Tensor& images, bool train) {
  net->train(train);
  util::AutocastScope autocast(device_.type(), options_.autocast);
  at::Tensor x = options_.channels_last ? images.contiguous(at::MemoryFormat::ChannelsLast) : images;
  // Eval-mode passes (pseudo-labels) need only the logits: the representation and aux heads are skipped.
  model::ModelOutput out = net->forward(x, /*pred_only=*/!train);
  // Losses run in fp32 whatever the forward's precision.
  out.pred = out.pred.to(at::kFloat);
  if (out.rep.defined()) out.rep = out.rep.to(at::kFloat);
  if (out.aux.defined()) out.aux = out.aux.to(at::kFloat);
  return out;
}

loss::GatherKeys Trainer::KeyGatherer() {
  if (!options_.communicator) return {};
  Communicator& comm = *options_.communicator;
  return [&comm](const at::Tensor& keys, const at::Tensor& per_class) {
    std::vector<at::Tensor> rows = comm.AllGatherRows(keys.contiguous());
    std::vector<at::Tensor> counts = comm.AllGather(per_class.contiguous());
    std::vector<std::pair<at::Tensor, at::Tensor>> out;
    for (size_t k = 0; k < rows.size(); ++k) out.emplace_back(rows[k], counts[k]);
    return out;
  };
}

ael::AelPlan Trainer::AelPlan(uint64_t seed) const {
  TORCH_CHECK(ael_, "this trainer is not set up for the AEL variant");
  return ael_->Plan(seed);
}

StepResult Trainer::Step(const StepInputs& in) {
  if (in.phase == Phase::kAel) return AelStep(in);
  c10::AutoGradMode grad_mode(true);
  StepResult r;
  StepNumbers n;
  PhaseClock clock(r.phases);
  using P = StepPhases;
  // SyncBN for every train-mode pass of the step (student and teacher), when data parallel.
  std::optional<model::SyncBatchNormScope> sync;
  if (replica_ops_ && options_.sync_bn) sync.emplace(replica_ops_.get());
  SetLearningRates(in.lr_backbone, in.lr_head);
  at::Tensor x_l = in.labeled_images.to(device_, at::kFloat);
  at::Tensor y_l = in.labels.to(device_, at::kLong);
  const int64_t n_l = x_l.size(0);
  TORCH_CHECK(y_l.dim() == 3 && y_l.size(0) == n_l && y_l.size(1) == x_l.size(2) && y_l.size(2) == x_l.size(3),
              "labels must be B x H x W matching the labeled images, got ", y_l.sizes(), " for ", x_l.sizes());
  at::Tensor loss;
  // Supervised-only with an EMA model: the teacher follows the student after every step.
  const bool ema_model = in.phase == Phase::kSupervised && options_.ema_model;

  clock.Mark(&P::other);
  if (in.phase == Phase::kWarmupFloor || in.phase == Phase::kSupervisedFloor) {
    model::ModelOutput out = Forward(student_, x_l, true);
    clock.Mark(&P::student_forward);
    if (in.phase == Phase::kWarmupFloor) {
      TORCH_CHECK(teacher_, "the warm-up floor needs a teacher");
      at::NoGradGuard no_grad;
      Forward(teacher_, x_l, true);
      clock.Mark(&P::teacher_forward);
    }
    loss = loss::CrossEntropy(out.pred, y_l, options_.supervised.ignore_index);
    if (out.rep.defined()) loss = loss + out.rep.sum() * 0.0;
    clock.Mark(&P::losses);
  } else if (in.phase == Phase::kSemiFloor) {
    TORCH_CHECK(teacher_, "the network floor needs a teacher");
    at::Tensor x_u = in.unlabeled_images.to(device_, at::kFloat);
    {
      at::NoGradGuard no_grad;
      Forward(teacher_, x_u, false);
    }
    clock.Mark(&P::pseudo_labels);
    at::Tensor x = at::cat({x_l, x_u});
    model::ModelOutput out = Forward(student_, x, true);
    clock.Mark(&P::student_forward);
    {
      at::NoGradGuard no_grad;
      Forward(teacher_, x, true);
    }
    clock.Mark(&P::teacher_forward);
    loss = loss::CrossEntropy(out.pred.slice(0, 0, n_l), y_l, options_.supervised.ignore_index);
    if (out.rep.defined()) loss = loss + out.rep.sum() * 0.0;
    n.supervised = loss;
    clock.Mark(&P::losses);
  } else if (in.phase != Phase::kSemi) {
    model::ModelOutput out = Forward(student_, x_l, true);
    clock.Mark(&P::student_forward);
    at::Tensor sup = loss::SupervisedLoss(out.pred, out.aux, y_l, options_.supervised);
    loss = out.rep.defined() ? sup + out.rep.sum() * 0.0 : sup;
    n.supervised = sup;
    if (in.phase == Phase::kWarmup) n.labeled_class_pixels = ClassPixels(y_l, out.pred.size(1));
    clock.Mark(&P::losses);
    if ((in.phase == Phase::kWarmup && teacher_) || (ema_model && !options_.teacher_bn_ema)) {
      at::NoGradGuard no_grad;  // refreshes only the teacher's BN statistics (§11.2), as U2PL's teacher pass does
      Forward(teacher_, x_l, true);
      clock.Mark(&P::teacher_forward);
    }
  } else {
    TORCH_CHECK(teacher_, "a semi-supervised step needs a teacher");
    if (in.copy_teacher) CopyParameters(teacher_, student_);
    clock.Mark(&P::ema);
    at::Tensor x_u = in.unlabeled_images.to(device_, at::kFloat);
    const int64_t h = x_u.size(2), w = x_u.size(3);
    const int64_t ignore = options_.supervised.ignore_index;
    at::Tensor pseudo, confidence, truth;
    at::Tensor excluded;  // pseudo-labels the filters below ignore: left out of the reference weighting's B*H*W (loss/unsupervised.h)
    if (in.unlabeled_truth.defined()) truth = in.unlabeled_truth.to(device_, at::kLong);
    {
      at::NoGradGuard no_grad;
      at::Tensor logits = at::upsample_bilinear2d(Forward(teacher_, x_u, options_.pseudo_labels_train_mode).pred, {h, w}, true);
      if (options_.flip_pseudo_labels) {
        // The mean of the two views' logits, as the flip of evaluation (model/inference.cc) sums them.
        const at::Tensor flipped = Forward(teacher_, x_u.flip({3}), options_.pseudo_labels_train_mode).pred;
        logits = (logits + at::upsample_bilinear2d(flipped, {h, w}, true).flip({3})) * 0.5;
      }
      at::Tensor prob = at::softmax(logits, 1);
      n.labeled_class_pixels = ClassPixels(y_l, prob.size(1));
      n.teacher_class_mass = prob.sum({0, 2, 3});
      if (in.class_scale.defined()) {
        // Distribution alignment (lib/train/alignment.ts): pseudo-labels from p * scale, renormalised,
        // so that classes the teacher under-predicts against the labels are not lost to the majority ones.
        TORCH_CHECK(in.class_scale.numel() == prob.size(1), "classScale has ", in.class_scale.numel(), " entries for ",
                    prob.size(1), " classes");
        prob = prob * in.class_scale.to(prob.options()).view({1, -1, 1, 1});
        prob = prob / prob.sum(1, true).clamp_min(1e-12);
      }
      std::tie(confidence, pseudo) = prob.max(1);
      n.pseudo_class_pixels = ClassPixels(pseudo, prob.size(1));
      clock.Mark(&P::pseudo_labels);
      if (in.unlabeled_strong.defined()) {
        TORCH_CHECK(in.unlabeled_strong.sizes() == in.unlabeled_images.sizes(), "unlabeledStrongImages is ", in.unlabeled_strong.sizes(),
                    " where unlabeledImages is ", in.unlabeled_images.sizes());
        x_u = in.unlabeled_strong.to(device_, at::kFloat);
      }
      if (options_.mix && at::rand({1}, generator_).item<double>() < 0.5) {
        loss::MixResult m = loss::Mix(x_u, pseudo, confidence, *options_.mix, generator_, ignore);
        x_u = m.images;
        pseudo = m.labels;
        confidence = m.confidence;
        if (truth.defined()) truth = loss::MixLike(truth, m.mask, *options_.mix, ignore);
        r.mixed = true;
      }
      const bool filtered = options_.confidence_threshold > 0 || in.class_prior.defined();
      const at::Tensor labelled_before = filtered ? (pseudo != ignore).sum() : at::Tensor();
      if (options_.confidence_threshold > 0) pseudo = pseudo.masked_fill(confidence < options_.confidence_threshold, ignore);
      if (in.class_prior.defined()) {
        TORCH_CHECK(in.class_prior.numel() == prob.size(1), "classPrior has ", in.class_prior.numel(), " entries for ", prob.size(1), " classes");
        pseudo = SelectByPrior(pseudo, confidence, in.class_prior, ignore);
      }
      if (filtered) excluded = labelled_before - (pseudo != ignore).sum();
      clock.Mark(&P::mixing);
    }
    at::Tensor x = at::cat({x_l, x_u});
    model::ModelOutput out = Forward(student_, x, true);
    clock.Mark(&P::student_forward);
    model::ModelOutput teacher_out;
    {
      at::NoGradGuard no_grad;
      teacher_out = Forward(teacher_, x, true);
    }
    clock.Mark(&P::teacher_forward);
    at::Tensor sup = loss::SupervisedLoss(out.pred.slice(0, 0, n_l), out.aux.defined() ? out.aux.slice(0, 0, n_l) : out.aux, y_l,
                                          options_.supervised);
    loss::UnsupervisedResult u = loss::UnsupervisedLoss(out.pred.slice(0, n_l), teacher_out.pred.slice(0, n_l), pseudo,
                                                        in.drop_percentile, options_.weighting, options_.supervised.ignore_index,
                                                        excluded);
    loss = sup + u.loss * options_.unsupervised_weight;
    n.supervised = sup;
    n.unsupervised = u.loss;
    n.threshold = u.threshold;
    n.kept = u.kept;
    r.unsup_valid = u.valid;
    if (truth.defined()) {
      // Metrics only (the truth never reaches a loss): all labelled pixels, and those L_u keeps.
      at::NoGradGuard no_grad;
      CountPseudoLabels(pseudo, truth, (pseudo != ignore) & (u.entropy < u.threshold), ignore, out.pred.size(1), n);
    }
    if (options_.contrastive) {
      loss::ContrastiveInputs ci{out.rep, teacher_out.rep, at::softmax(teacher_out.pred, 1), y_l, pseudo, u.entropy, in.alpha, {}, {}, {}};
      ci.gather_keys = KeyGatherer();
      loss::ContrastiveResult c = loss::ContrastiveLoss(ci, options_.contrastive_options, *bank_, generator_);
      // The reference averages the loss value over replicas outside autograd, so each rank's
      // gradient is 1/R of its own and the gradient average divides by R again [Q] (§10.8).
      const double scale = options_.contrastive_world_scaling ? 1.0 / world_size() : 1.0;
      loss = loss + c.loss * (options_.contrastive_weight * scale);
      n.contrastive = c.loss;
      r.valid_classes = c.valid_classes;
    } else if (out.rep.defined()) {
      loss = loss + out.rep.sum() * 0.0;
    }
    clock.Mark(&P::losses);
  }
  // Backward, SGD, and for U2PL steps the teacher's EMA of the updated student in the same pass (§7).
  const bool ema = (in.phase == Phase::kSemi || ema_model) && !in.copy_teacher;
  Finish(loss, n, r, in.stop_requested, ema ? &teacher_params_ : nullptr, in.ema_decay, clock);
  if ((in.phase == Phase::kSemi || ema_model) && !r.skipped) {
    if (in.copy_teacher) CopyParameters(teacher_, student_);
    if (options_.teacher_bn_ema) model::EmaUpdateBuffers(*teacher_, *student_, in.copy_teacher ? 0.0 : in.ema_decay);
    clock.Mark(&P::ema);
  }
  return r;
}

io::ValuePtr Trainer::State() const {
  auto root = io::Value::Dict();
  root->set("model_state", model::StateDictValue(*student_));
  if (teacher_) root->set("teacher_state", model::StateDictValue(*teacher_));
  // optimizer_state in PyTorch's layout: parameters numbered through the groups in order.
  auto state = io::Value::Dict();
  auto groups = io::Value::List();
  int64_t index = 0;
  for (size_t gi = 0; gi < optimizer_->num_groups(); ++gi) {
    auto g = io::Value::Dict();
    g->set("lr", io::Value::Float(optimizer_->lr(gi)));
    g->set("momentum", io::Value::Float(optimizer_->momentum()));
    g->set("dampening", io::Value::Float(0.0));
    g->set("weight_decay", io::Value::Float(optimizer_->weight_decay()));
    g->set("nesterov", io::Value::Bool(false));
    auto params = io::Value::List();
    for (size_t k = 0; k < optimizer_->group(gi).size(); ++k, ++index) {
      const at::Tensor& buffer = optimizer_->momentum_buffers()[index];
      if (buffer.defined()) {
        auto entry = io::Value::Dict();
        entry->set("momentum_buffer", io::Value::Tensor(buffer));
        state->entries.emplace_back(io::Value::Int(index), entry);
      }
      params->items.push_back(io::Value::Int(index));
    }
    g->set("params", params);
    groups->items.push_back(g);
  }
  auto optimizer = io::Value::Dict();
  optimizer->set("state", state);
  optimizer->set("param_groups", groups);
  root->set("optimizer_state", optimizer);
  if (bank_) {
    auto bank = io::Value::Dict();
    auto keys = io::Value::List();
    auto capacity = io::Value::List();
    for (int64_t c = 0; c < bank_->num_classes(); ++c) {
      keys->items.push_back(io::Value::Tensor(bank_->Ordered(c)));
      capacity->items.push_back(io::Value::Int(bank_->capacity(c)));
    }
    bank->set("keys", keys);
    bank->set("capacity", capacity);
    root->set("memory_bank", bank);
  }
  auto rng = io::Value::Dict();
  at::Tensor trainer_rng = generator_.get_state();
  at::Tensor global_rng;
  at::Generator global = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    global_rng = global.get_state();  // dropout masks
  }
  // On a GPU, dropout draws from the device's own generator.
  const std::optional<at::Generator> cuda = CudaGenerator(device_);
  const at::Tensor cuda_rng = cuda ? GeneratorState(*cuda) : at::Tensor();
  rng->set("trainer", io::Value::Tensor(trainer_rng));
  rng->set("torch_cpu", io::Value::Tensor(global_rng));
  if (cuda) rng->set("torch_cuda", io::Value::Tensor(cuda_rng));
  if (options_.communicator) {
    // Every rank's generators (rank 0's are also the ones above), for an exact resume at this world size.
    auto ranks = io::Value::List();
    std::vector<at::Tensor> trainer_all = options_.communicator->AllGather(trainer_rng);
    std::vector<at::Tensor> global_all = options_.communicator->AllGather(global_rng);
    std::vector<at::Tensor> cuda_all = cuda ? options_.communicator->AllGather(cuda_rng) : std::vector<at::Tensor>{};
    for (size_t k = 0; k < trainer_all.size(); ++k) {
      auto entry = io::Value::Dict();
      entry->set("trainer", io::Value::Tensor(trainer_all[k]));
      entry->set("torch_cpu", io::Value::Tensor(global_all[k]));
      if (cuda) entry->set("torch_cuda", io::Value::Tensor(cuda_all[k]));
      ranks->items.push_back(entry);
    }
    rng->set("ranks", ranks);
  }
  root->set("rng_state", rng);
  if (options_.loss_scaling.enabled) {
    // torch.cuda.amp.GradScaler.state_dict()'s keys.
    auto scaler = io::Value::Dict();
    scaler->set("scale", io::Value::Float(loss_scale_));
    scaler->set("growth_factor", io::Value::Float(options_.loss_scaling.growth_factor));
    scaler->set("backoff_factor", io::Value::Float(options_.loss_scaling.backoff_factor));
    scaler->set("growth_interval", io::Value::Int(options_.loss_scaling.growth_interval));
    scaler->set("_growth_tracker", io::Value::Int(growth_tracker_));
    root->set("grad_scaler", scaler);
  }
  if (ael_) {
    ael_->Save(*root);  // rank 0's, in the reference's keys
    if (options_.communicator && !ael_->options().shared_across_ranks) {
      // Each rank keeps its own kappa and bank (as the reference's replicas do): all of them, so that every rank resumes its own.
      const std::vector<at::Tensor> kappas = options_.communicator->AllGather(ael_->kappa().contiguous());
      const std::vector<at::Tensor> banks = options_.communicator->AllGather(ael_->bank().contiguous());
      auto ranks = io::Value::List();
      for (size_t k = 0; k < kappas.size(); ++k) {
        auto entry = io::Value::Dict();
        entry->set("class_criterion", io::Value::Tensor(kappas[k]));
        entry->set("cutmix_bank", io::Value::Tensor(banks[k]));
        ranks->items.push_back(entry);
      }
      root->set("ael_ranks", ranks);
    }
  }
  return root;
}

void Trainer::LoadState(const io::ValuePtr& root, const std::string& source) {
  auto load = [&](model::SegmentationModel& net, const char* key) {
    std::string used;
    model::LoadReport report = model::LoadStateDict(*net, model::StateDictFromCheckpoint(root, key, source, &used));
    TORCH_CHECK(report.missing.empty() && report.unexpected.empty(), source, ": '", key, "' does not match the model (",
                report.missing.size(), " missing, ", report.unexpected.size(), " unexpected names, e.g. '",
                report.missing.empty() ? report.unexpected.front() : report.missing.front(), "')");
  };
  load(student_, "model_state");
  if (teacher_ && root->get("teacher_state")) load(teacher_, "teacher_state");
  if (auto opt = root->get("optimizer_state")) {
    auto state = opt->get("state");
    // Parameter i of the file is parameter order[i] of ours (the same numbering but for u2pl 0.1's files).
    std::vector<size_t> order;
    const size_t groups = optimizer_->num_groups();
    std::vector<size_t> first(groups + 1, 0);
    for (size_t g = 0; g < groups; ++g) first[g + 1] = first[g] + optimizer_->group(g).size();
    auto file_groups = opt->get("param_groups");
    const size_t file_group_count = file_groups && file_groups->is(io::Value::Kind::List) ? file_groups->items.size() : groups;
    if (groups == 3 && file_group_count == 2) {
      // Written by u2pl 0.1 with an aux head: two groups, [encoder] and [decoder, auxor] in module order.
      for (size_t g : {0, 2, 1})
        for (size_t k = first[g]; k < first[g + 1]; ++k) order.push_back(k);
    } else {
      TORCH_CHECK(file_group_count == groups, source, ": optimizer_state has ", file_group_count, " parameter groups, this model ",
                  groups, " (encoder", groups == 3 ? ", aux head, decoder" : ", decoder", ")");
      for (size_t g = 0; g < groups; ++g) {
        auto listed = file_groups ? file_groups->items[g]->get("params") : nullptr;
        TORCH_CHECK(!listed || listed->items.size() == optimizer_->group(g).size(), source, ": optimizer_state group ", g, " holds ",
                    listed ? listed->items.size() : 0, " parameters, this model's ", optimizer_->group(g).size());
      }
      for (size_t k = 0; k < first[groups]; ++k) order.push_back(k);
    }
    const auto& params = optimizer_->parameters();
    auto& buffers = optimizer_->momentum_buffers();
    if (state)
      for (const auto& [k, v] : state->entries) {
        const int64_t i = k->is(io::Value::Kind::Int) ? k->integer : std::stoll(k->text);
        auto buffer = v->get("momentum_buffer");
        TORCH_CHECK(i >= 0 && i < static_cast<int64_t>(order.size()) && buffer && buffer->is(io::Value::Kind::Tensor),
                    source, ": optimizer_state does not match the model");
        const at::Tensor& p = params[order[i]];
        TORCH_CHECK(buffer->tensor.sizes() == p.sizes(), source, ": momentum buffer ", i, " has shape ", buffer->tensor.sizes(),
                    ", the parameter ", p.sizes());
        buffers[order[i]] = buffer->tensor.to(p.options()).contiguous(p.suggest_memory_format());
      }
  }
  if (bank_)
    if (auto bank = root->get("memory_bank")) {
      auto keys = bank->get("keys");
      TORCH_CHECK(keys && static_cast<int64_t>(keys->items.size()) == bank_->num_classes(), source,
                  ": memory_bank holds a different number of classes");
      for (int64_t c = 0; c < bank_->num_classes(); ++c) bank_->Restore(c, keys->items[c]->tensor);
    }
  if (auto rng = root->get("rng_state")) {
    // This rank's generators when the file has them (saved at this world size or larger); rank 0
    // uses the top-level ones; another rank of a file without its entry starts fresh from its seed.
    io::ValuePtr mine = rank() == 0 ? rng : nullptr;
    if (auto ranks = rng->get("ranks"); ranks && rank() < static_cast<int>(ranks->items.size())) mine = ranks->items[rank()];
    if (mine) {
      if (auto t = mine->get("trainer")) generator_.set_state(t->tensor);
      if (auto t = mine->get("torch_cpu")) SetGeneratorState(at::detail::getDefaultCPUGenerator(), t->tensor);
      const std::optional<at::Generator> cuda = CudaGenerator(device_);
      if (auto t = mine->get("torch_cuda"); t && cuda) SetGeneratorState(*cuda, t->tensor);
    }
  }
  if (auto scaler = root->get("grad_scaler"); scaler && options_.loss_scaling.enabled) {
    if (auto v = scaler->get("scale")) loss_scale_ = v->is(io::Value::Kind::Float) ? v->number : static_cast<double>(v->integer);
    if (auto v = scaler->get("_growth_tracker")) growth_tracker_ = v->integer;
  }
  if (ael_) {
    // This rank's own state when the file has it (saved at this world size or larger) and the ranks
    // keep their own; else rank 0's (a shared state must start alike on every rank).
    io::ValuePtr mine = root;
    if (auto ranks = root->get("ael_ranks"); ranks && !ael_->options().shared_across_ranks && rank() < static_cast<int>(ranks->items.size()))
      mine = ranks->items[rank()];
    ael_->Load(mine, source);
  }
  if (options_.channels_last) {
    model::SetChannelsLast(*student_, true);
    if (teacher_) model::SetChannelsLast(*teacher_, true);
  }
}

}  // namespace u2pl::train
