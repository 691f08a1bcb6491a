// One training step of U2PL (§11.1), of its supervised warm-up (§11.2) and of the supervised-only
// baseline (§11.4), with the optimizer, the EMA teacher, the memory banks and the RNG it owns.
// Schedules (learning rates, EMA decay, drop percentile, alpha_t) come in per step from TypeScript.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <ATen/core/Generator.h>

#include "ael/ael_state.h"
#include "ael/consistency.h"
#include "io/value.h"
#include "loss/contrastive.h"
#include "loss/memory_bank.h"
#include "loss/mixing.h"
#include "loss/supervised.h"
#include "loss/unsupervised.h"
#include "model/batch_norm.h"
#include "model/segmentation_model.h"
#include "train/distributed.h"
#include "train/gradient_reducer.h"
#include "train/sgd.h"

namespace u2pl::train {

class PhaseClock;

// The AEL variant (u2pl-ael-method.md): its own step (Phase::kAel) with adaptive copy-paste,
// adaptive CutMix, the class-sampled consistency loss and the contrastive loss from an epoch on.
struct AelOptions {
  bool enabled = false;
  ael::AelStateOptions state;
  ael::ConsistencyOptions consistency;
  double consistency_weight = 1;  // criterion.consist_weight (w_u)
  // A9 Q6 [Q]: the reference's R replicas scale its losses (L_s/R, L_cons/R, L_c/R^2); 1: unscaled.
  double replicas = 8;
  double box_min_area = 0.005;   // acm.area_thresh: a component needs more pixels than this share
  double bank_min_area = 0.01;   // acm.area_thresh2: a class counts as shown from this share on
  bool square_area = true;       // Q15 [Q]: the shares are of H^2 (reference) rather than H*W
  bool ignore_confident = true;  // Q1/Q3 [Q]: L_cons2 ignores the lowest-entropy pixels (reference)
  double anchor_percentile = 20;    // contrastive.low_entropy_threshold: A_u = entropy <= this percentile
  double negative_percentile = 80;  // contrastive.unsupervised_entropy_ignore: U_u = entropy >= this one
  bool partner_by_label_sum = true;  // Q12 [Q]: a partner exists when its labels sum to non-zero
};

// Dynamic loss scaling with torch.cuda.amp.GradScaler's rules, for fp16 autocast (its gradients
// underflow unscaled): the loss is multiplied by the scale before the backward and the gradients
// divided by it in SGD; a step with an inf or NaN gradient is skipped (weights, momentum and the EMA
// teacher unchanged) and the scale multiplied by backoff_factor; growth_interval good steps in a row
// multiply it by growth_factor.
struct LossScaling {
  bool enabled = false;
  double init_scale = 65536, growth_factor = 2, backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

struct TrainerOptions {
  double momentum = 0.9;
  double weight_decay = 1e-4;
  loss::SupervisedOptions supervised;
  loss::UnsupervisedWeighting weighting = loss::UnsupervisedWeighting::kReference;
  double unsupervised_weight = 1.0;
  bool contrastive = false;
  loss::ContrastiveOptions contrastive_options;
  double contrastive_weight = 1.0;
  std::vector<int64_t> queue_size;  // per class; empty = 50000 for class 0, 30000 for the others
  std::optional<loss::MixMode> mix;  // unsupervised.apply_aug
  at::ScalarType autocast = at::ScalarType::Undefined;
  LossScaling loss_scaling;
  bool channels_last = false;
  uint64_t seed = 0;
  // Switches of the from-scratch study (experiments/camvid-small); the defaults are the reference's.
  bool pseudo_labels_train_mode = false;  // pseudo-labels from the teacher in train mode (reference: eval mode, §8.1)
  double confidence_threshold = 0;        // pseudo-labels whose teacher confidence is below it become ignore
  bool flip_pseudo_labels = false;        // teacher logits averaged over the image and its flip (flipped back), as flip TTA
  bool teacher_bn_ema = false;            // the teacher's BN statistics follow the student's by the EMA (reference: its own, §7)
  bool ema_model = false;                 // supervised-only: the teacher follows the student by the EMA, as U2PL's does (a baseline scored as U2PL is)
  // Data parallelism (null: one process; a world of one rank still runs every collective).
  // sync_bn: BN statistics over every rank's batch (§4.6); without it the ranks' BN buffers are
  // broadcast from rank 0 after each step, as DDP's broadcast_buffers keeps them alike.
  // contrastive_world_scaling: the reference's effective contrastive weight nominal / R (§10.8 [Q]).
  std::shared_ptr<Communicator> communicator;
  bool sync_bn = true;
  bool contrastive_world_scaling = true;
  AelOptions ael;
};

// The floors (bench): a step's network passes and SGD step with a plain CE on the labeled rows and
// nothing else, what the step's own work is measured against.
//   kSemiFloor: teacher eval forward, student forward/backward on the joint batch, teacher train forward
//   kWarmupFloor: student forward/backward on the labeled batch, teacher train forward
//   kSupervisedFloor: student forward/backward on the labeled batch
//   kAel: the AEL variant's step (u2pl-ael-method.md A10)
enum class Phase { kSupervised, kWarmup, kSemi, kSemiFloor, kWarmupFloor, kSupervisedFloor, kAel };

struct StepInputs {
  Phase phase = Phase::kSemi;
  at::Tensor labeled_images;    // B_l x 3 x H x W float
  at::Tensor labels;            // B_l x H x W (uint8 or int64)
  at::Tensor unlabeled_images;  // B_u x 3 x H x W (warm-up and semi)
  double lr_backbone = 0, lr_head = 0;
  bool copy_teacher = false;    // epoch e_w: the teacher is the student (§7)
  double ema_decay = 0.99;
  double drop_percentile = 80;  // q_e of §9
  double alpha = 20;            // alpha_e of §10.2
  // Optional B_u x H x W ground truth of the unlabeled batch, for the pseudo-label metrics only:
  // it is compared with the pseudo-labels after they are made and never reaches a loss.
  at::Tensor unlabeled_truth;
  // Optional C floats (kSemi): distribution alignment's per-class factors (soft or hard,
  // lib/train/alignment.ts); the teacher's class probabilities are multiplied by them and
  // renormalised before the argmax.
  at::Tensor class_scale;
  // Optional C floats (kSemi): class-balanced selection's target shares. A class that holds a larger
  // share of the (mixed) pseudo-labels than this keeps only its most confident pixels, that share
  // of the labelled ones; the rest become ignore.
  at::Tensor class_prior;
  // Optional B_u x 3 x H x W (kSemi): the unlabeled batch's strong views (data/photometric.h), the
  // student's input (mixed as the weak views would be) while the pseudo-labels come from the weak ones.
  at::Tensor unlabeled_strong;
  // Data parallel: this rank wants to stop (Ctrl-C); every rank learns whether any does (StepResult.stop).
  bool stop_requested = false;
  // kAel: unlabeled_images are [the kept images; their bank partners] (2k rows), unlabeled_index
  // their indices in the unlabeled list; the partners of the labeled images for copy-paste; the plan
  // this step follows; the entropy share L_cons2 ignores (percent_e); whether L_c is on (epoch >=
  // start_epoch); the seed of the next step's plan.
  at::Tensor partner_images, partner_labels;
  std::vector<bool> has_partner;
  std::vector<int64_t> unlabeled_index;
  ael::AelPlan plan;
  double consistency_percent = 20;
  bool contrastive_on = true;
  uint64_t next_plan_seed = 0;
};

// Seconds spent in each part of a step (what the bench's breakdown shows); on CPU every ATen op
// has finished when it returns, so the wall time between marks is the part's time.
struct StepPhases {
  double pseudo_labels = 0;    // the teacher's eval-mode pass on the unlabeled batch, softmax, argmax
  double mixing = 0;           // CutMix/CutOut/ClassMix of images, labels and confidences
  double student_forward = 0;  // the student's pass (labeled, or labeled + unlabeled)
  double teacher_forward = 0;  // the teacher's train-mode pass (BN statistics, entropy, keys)
  double losses = 0;           // supervised, unsupervised and contrastive losses (and the banks)
  double backward = 0;
  double optimizer = 0;        // zero_grad + SGD step
  double ema = 0;              // the teacher's EMA (or copy)
  double other = 0;            // input conversion, learning rates, host reads of the results
};

struct StepResult {
  double loss = 0, supervised = 0, unsupervised = 0, contrastive = 0;
  bool mixed = false;
  double unsup_threshold = 0;
  int64_t unsup_kept = 0;
  int64_t unsup_valid = 0;       // pixels with a pseudo-label (after mixing and the confidence threshold)
  int64_t valid_classes = 0;
  // With unlabeled_truth: labelled pixels of the mixed batch, how many pseudo-labels are right, and
  // the same over the pixels L_u keeps.
  int64_t pl_pixels = 0, pl_correct = 0, pl_kept_pixels = 0, pl_kept_correct = 0;
  // With unlabeled_truth, per class over those labelled pixels: the truth's pixels, the pseudo-labels'
  // and the right ones (their IoU says which classes the pseudo-labels teach wrong); empty otherwise.
  std::vector<double> pl_class_truth, pl_class_predicted, pl_class_right;
  // Class statistics for distribution alignment (summed over the ranks): labelled pixels per class of
  // the labeled batch (warm-up and U2PL steps), and the teacher's class probabilities summed over the
  // unlabeled pixels before any alignment, and its pseudo-labels per class after it (U2PL steps; empty otherwise).
  std::vector<double> labeled_class_pixels, teacher_class_mass, pseudo_class_pixels;
  StepPhases phases;
  bool stop = false;  // data parallel: some rank asked to stop after this step
  // Loss scaling: the step was skipped (a gradient was inf or NaN), and the scale after the step (1 without).
  bool skipped = false;
  double loss_scale = 1;
  // kAel: pixels copy-pasted, boxes taken from a component (the others random), the next step's plan.
  int64_t pasted = 0, component_boxes = 0;
  ael::AelPlan next_plan;
};

class Trainer {
 public:
  // teacher may be null (supervised-only training).
  Trainer(model::SegmentationModel student, model::SegmentationModel teacher, const TrainerOptions& options);

  StepResult Step(const StepInputs& in);

  // model_state, teacher_state, optimizer_state (PyTorch layout), memory_bank, rng_state (every
  // rank's CPU and CUDA generators), grad_scaler, and the AEL state (every rank's).
  io::ValuePtr State() const;
  void LoadState(const io::ValuePtr& root, const std::string& source);

  const TrainerOptions& options() const { return options_; }
  int rank() const { return options_.communicator ? options_.communicator->rank() : 0; }
  int world_size() const { return options_.communicator ? options_.communicator->world_size() : 1; }
  // Data parallel: every rank takes rank 0's weights, statistics and banks (after building or loading).
  void BroadcastFromRankZero();
  // Data parallel: sums a tensor over the ranks in place (evaluation confusion matrices, counters).
  void AllReduceSum(at::Tensor& tensor);
  double loss_scale() const { return loss_scale_; }
  loss::MemoryBank* bank() { return bank_.get(); }
  // The AEL state (null unless options.ael.enabled) and the plan a step would draw from it now.
  const ael::AelState* ael() const { return ael_.get(); }
  ael::AelPlan AelPlan(uint64_t seed) const;

 private:
  model::ModelOutput Forward(model::SegmentationModel& net, const at::Tensor& images, bool train);
  StepResult AelStep(const StepInputs& in);  // native/train/ael_step.cc
  // Data parallel: the contrastive loss's key gathering over the ranks (§10.4); empty for one process.
  loss::GatherKeys KeyGatherer();
  void SetLearningRates(double backbone, double head);

  // What a step reports, kept as tensors on the step's device until its end: one copy to the host
  // (and, data parallel, one all-reduce) reads them all, where an .item() each would make a GPU
  // wait for each in turn. Undefined entries count as 0.
  struct StepNumbers {
    at::Tensor loss, supervised, unsupervised, contrastive, threshold, kept;
    at::Tensor pl_pixels, pl_correct, pl_kept_pixels, pl_kept_correct;
    at::Tensor labeled_class_pixels, teacher_class_mass, pseudo_class_pixels;  // 1-d, or undefined
    at::Tensor pl_class_truth, pl_class_predicted, pl_class_right;              // 1-d, or undefined
  };
  // Metrics only: the pseudo-labels against the unlabeled images' own labels (truth; `ignore` where
  // unlabelled), all pixels, the pixels the unsupervised loss keeps (`kept`, bool) and per class.
  static void CountPseudoLabels(const at::Tensor& pseudo, const at::Tensor& truth, const at::Tensor& kept, int64_t ignore,
                                int64_t classes, StepNumbers& n);
  // The end of every step: the backward (of the scaled loss with loss scaling), the gradient
  // average over the ranks, the step's numbers read (means over the ranks for the losses, sums for
  // the counts), then SGD and the teacher's EMA (`ema`, a teacher parameter list, or null) unless
  // loss scaling found an inf or NaN gradient (r.skipped: the caller skips its own updates too),
  // the scale's update, and without SyncBN rank 0's BN buffers on every rank.
  void Finish(const at::Tensor& loss, const StepNumbers& n, StepResult& r, bool stop_requested, const std::vector<at::Tensor>* ema,
              double ema_decay, PhaseClock& clock);
  void ReadNumbers(const StepNumbers& n, const at::Tensor& non_finite, StepResult& r, bool stop_requested);
  // Without SyncBN: every rank takes rank 0's BN buffers (student and teacher).
  void BroadcastBnBuffers();

  model::SegmentationModel student_, teacher_;
  TrainerOptions options_;
  std::unique_ptr<model::CrossReplicaOps> replica_ops_;  // SyncBN's view of the communicator
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<MomentumSgd> optimizer_;
  std::vector<at::Tensor> teacher_params_;  // in the optimizer's parameter order, for the fused EMA
  std::unique_ptr<loss::MemoryBank> bank_;
  std::unique_ptr<ael::AelState> ael_;
  mutable at::Generator generator_;  // get_state() is non-const
  at::Device device_;
  double loss_scale_ = 1;
  int64_t growth_tracker_ = 0;  // good steps in a row since the scale last changed
};

}  // namespace u2pl::train
