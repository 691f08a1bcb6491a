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

// Labelled pixels per class (ignore and other out-of-range values left out).
std::vector<double> ClassPixels(const at::Tensor& labels, int64_t classes) {
  at::Tensor y = labels.flatten();
  return ToVector(at::bincount(y.masked_select((y >= 0) & (y < classes)), {}, classes));
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
      device_(student_->parameters().front().device()) {
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
  if (options.communicator && options.communicator->world_size() > 1) {
    replica_ops_ = std::make_unique<CommunicatorOps>(*options.communicator);
    reducer_ = std::make_unique<GradientReducer>(optimizer_->parameters(), *options.communicator);
    BroadcastFromRankZero();
    at::manual_seed(RankSeed(options.seed, options.communicator->rank()));  // dropout masks per rank
  }
}

void Trainer::BroadcastFromRankZero() {
  if (world_size() == 1) return;
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> state;
  for (auto* net : {&student_, &teacher_}) {
    if (!*net) continue;
    for (auto& t : (*net)->parameters()) state.push_back(t);
    for (auto& t : (*net)->buffers()) state.push_back(t);
  }
  // Broadcast needs contiguous tensors: channels-last weights travel through a contiguous copy.
  std::vector<at::Tensor> wire;
  for (auto& t : state) wire.push_back(t.is_contiguous() ? t : t.contiguous());
  options_.communicator->Broadcast(wire, 0);
  for (size_t i = 0; i < state.size(); ++i)
    if (!wire[i].is_same(state[i])) state[i].copy_(wire[i]);
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
  if (world_size() == 1) return;
  std::vector<at::Tensor> one{tensor};
  options_.communicator->AllReduceSum(one);
}

void Trainer::ReduceResult(StepResult& r, bool stop_requested) {
  if (world_size() == 1) return;
  const double R = world_size();
  std::vector<double> values{r.loss, r.supervised, r.unsupervised, r.contrastive, r.mixed ? 1.0 : 0.0, r.unsup_threshold,
                             static_cast<double>(r.unsup_kept), static_cast<double>(r.unsup_valid), static_cast<double>(r.valid_classes),
                             static_cast<double>(r.pl_pixels), static_cast<double>(r.pl_correct), static_cast<double>(r.pl_kept_pixels),
                             static_cast<double>(r.pl_kept_correct), stop_requested ? 1.0 : 0.0};
  const size_t scalars = values.size();
  // The class statistics travel in the same collective (their lengths are alike on every rank: the phase decides).
  const std::vector<std::vector<double>*> stats{&r.labeled_class_pixels, &r.teacher_class_mass, &r.pseudo_class_pixels};
  for (const auto* s : stats) values.insert(values.end(), s->begin(), s->end());
  at::Tensor v = at::tensor(values, at::TensorOptions().dtype(at::kDouble));
  AllReduceSum(v);
  const double* x = v.data_ptr<double>();
  size_t offset = scalars;
  for (auto* s : stats) {
    std::copy(x + offset, x + offset + s->size(), s->begin());
    offset += s->size();
  }
  // Losses, the mixed flag, the threshold and the class count are means over the ranks; pixel counts are sums.
  r.loss = x[0] / R;
  r.supervised = x[1] / R;
  r.unsupervised = x[2] / R;
  r.contrastive = x[3] / R;
  r.mixed = x[4] / R >= 0.5;
  r.unsup_threshold = x[5] / R;
  r.unsup_kept = static_cast<int64_t>(x[6]);
  r.unsup_valid = static_cast<int64_t>(x[7]);
  r.valid_classes = static_cast<int64_t>(std::llround(x[8] / R));
  r.pl_pixels = static_cast<int64_t>(x[9]);
  r.pl_correct = static_cast<int64_t>(x[10]);
  r.pl_kept_pixels = static_cast<int64_t>(x[11]);
  r.pl_kept_correct = static_cast<int64_t>(x[12]);
  r.stop = x[13] > 0;
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
  if (world_size() == 1) return {};
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
    r.supervised = loss.item<double>();
    clock.Mark(&P::losses);
  } else if (in.phase != Phase::kSemi) {
    model::ModelOutput out = Forward(student_, x_l, true);
    clock.Mark(&P::student_forward);
    at::Tensor sup = loss::SupervisedLoss(out.pred, out.aux, y_l, options_.supervised);
    loss = out.rep.defined() ? sup + out.rep.sum() * 0.0 : sup;
    r.supervised = sup.item<double>();
    if (in.phase == Phase::kWarmup) r.labeled_class_pixels = ClassPixels(y_l, out.pred.size(1));
    clock.Mark(&P::losses);
    if (in.phase == Phase::kWarmup && teacher_) {
      at::NoGradGuard no_grad;  // refreshes only the teacher's BN statistics (§11.2)
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
    int64_t excluded = 0;  // pseudo-labels the filters below ignore: left out of the reference weighting's B*H*W (loss/unsupervised.h)
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
      r.labeled_class_pixels = ClassPixels(y_l, prob.size(1));
      r.teacher_class_mass = ToVector(prob.sum({0, 2, 3}));
      if (in.class_scale.defined()) {
        // Distribution alignment (lib/train/alignment.ts): pseudo-labels from p * scale, renormalised,
        // so that classes the teacher under-predicts against the labels are not lost to the majority ones.
        TORCH_CHECK(in.class_scale.numel() == prob.size(1), "classScale has ", in.class_scale.numel(), " entries for ",
                    prob.size(1), " classes");
        prob = prob * in.class_scale.to(prob.options()).view({1, -1, 1, 1});
        prob = prob / prob.sum(1, true).clamp_min(1e-12);
      }
      std::tie(confidence, pseudo) = prob.max(1);
      r.pseudo_class_pixels = ClassPixels(pseudo, prob.size(1));
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
      const int64_t labelled_before = filtered ? (pseudo != ignore).sum().item<int64_t>() : 0;
      if (options_.confidence_threshold > 0) pseudo = pseudo.masked_fill(confidence < options_.confidence_threshold, ignore);
      if (in.class_prior.defined()) {
        TORCH_CHECK(in.class_prior.numel() == prob.size(1), "classPrior has ", in.class_prior.numel(), " entries for ", prob.size(1), " classes");
        pseudo = SelectByPrior(pseudo, confidence, in.class_prior, ignore);
      }
      if (filtered) excluded = labelled_before - (pseudo != ignore).sum().item<int64_t>();
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
    r.supervised = sup.item<double>();
    r.unsupervised = u.loss.item<double>();
    r.unsup_threshold = u.threshold;
    r.unsup_kept = u.kept;
    r.unsup_valid = u.valid;
    if (truth.defined()) {
      // Metrics only (the truth never reaches a loss): all labelled pixels, and those L_u keeps.
      at::NoGradGuard no_grad;
      const at::Tensor labelled = truth != ignore, right = (pseudo == truth) & labelled;
      const at::Tensor kept = (pseudo != ignore) & (u.entropy < u.threshold) & labelled;
      r.pl_pixels = labelled.sum().item<int64_t>();
      r.pl_correct = right.sum().item<int64_t>();
      r.pl_kept_pixels = kept.sum().item<int64_t>();
      r.pl_kept_correct = (right & kept).sum().item<int64_t>();
    }
    if (options_.contrastive) {
      loss::ContrastiveInputs ci{out.rep, teacher_out.rep, at::softmax(teacher_out.pred, 1), y_l, pseudo, u.entropy, in.alpha, {}, {}, {}};
      ci.gather_keys = KeyGatherer();
      loss::ContrastiveResult c = loss::ContrastiveLoss(ci, options_.contrastive_options, *bank_, generator_);
      // The reference averages the loss value over replicas outside autograd, so each rank's
      // gradient is 1/R of its own and the gradient average divides by R again [Q] (§10.8).
      const double scale = options_.contrastive_world_scaling ? 1.0 / world_size() : 1.0;
      loss = loss + c.loss * (options_.contrastive_weight * scale);
      r.contrastive = c.loss.item<double>();
      r.valid_classes = c.valid_classes;
    } else if (out.rep.defined()) {
      loss = loss + out.rep.sum() * 0.0;
    }
    clock.Mark(&P::losses);
  }
  optimizer_->ZeroGrad();
  if (reducer_) reducer_->Prepare();
  loss.backward();
  if (reducer_) reducer_->Finish();  // gradients averaged over the ranks (bucketed, overlapping the backward)
  clock.Mark(&P::backward);
  r.loss = loss.item<double>();
  clock.Mark(&P::other);
  // SGD, and for U2PL steps the teacher's EMA of the updated student in the same pass (§7).
  const bool ema = in.phase == Phase::kSemi && !in.copy_teacher;
  optimizer_->Step(ema ? &teacher_params_ : nullptr, in.ema_decay);
  clock.Mark(&P::optimizer);
  if (in.phase == Phase::kSemi) {
    if (in.copy_teacher) CopyParameters(teacher_, student_);
    if (options_.teacher_bn_ema) model::EmaUpdateBuffers(*teacher_, *student_, in.copy_teacher ? 0.0 : in.ema_decay);
    clock.Mark(&P::ema);
  }
  ReduceResult(r, in.stop_requested);
  clock.Mark(&P::other);
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
  rng->set("trainer", io::Value::Tensor(trainer_rng));
  rng->set("torch_cpu", io::Value::Tensor(global_rng));
  if (world_size() > 1) {
    // Every rank's generators (rank 0's are also the ones above), for an exact resume at this world size.
    auto ranks = io::Value::List();
    std::vector<at::Tensor> trainer_all = options_.communicator->AllGather(trainer_rng);
    std::vector<at::Tensor> global_all = options_.communicator->AllGather(global_rng);
    for (size_t k = 0; k < trainer_all.size(); ++k) {
      auto entry = io::Value::Dict();
      entry->set("trainer", io::Value::Tensor(trainer_all[k]));
      entry->set("torch_cpu", io::Value::Tensor(global_all[k]));
      ranks->items.push_back(entry);
    }
    rng->set("ranks", ranks);
  }
  root->set("rng_state", rng);
  if (ael_) ael_->Save(*root);
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
      if (auto t = mine->get("torch_cpu")) {
        at::Generator global = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
        std::lock_guard<std::mutex> lock(global.mutex());
        global.set_state(t->tensor);
      }
    }
  }
  if (ael_) ael_->Load(root, source);
  if (options_.channels_last) {
    model::SetChannelsLast(*student_, true);
    if (teacher_) model::SetChannelsLast(*teacher_, true);
  }
}

}  // namespace u2pl::train
