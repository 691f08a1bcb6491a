// The state the AEL variant adds to a run (u2pl-ael-method.md A3, A5.1, A11): the per-class
// confidence kappa (an EMA of how sure the student is of each class on the labeled batch) and the
// cutmix bank (which classes each unlabeled image showed the teacher), and the sampling that reads
// them: the classes copy-paste takes, and for each unlabeled image its class and bank partner.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "ael/consistency.h"
#include "io/value.h"

namespace u2pl::ael {

struct AelStateOptions {
  int64_t classes = 0;
  int64_t unlabeled = 0;               // N_u: the bank's columns
  int64_t unlabeled_batch = 2;         // unlabeled images loaded per step (the plan keeps one or all)
  std::vector<int64_t> paste_classes;  // T_cat: the classes ACP may paste (empty: no ACP)
  int64_t paste_draws = 3;             // `acp.number`: categorical draws with replacement per step
  bool adaptive_cutmix = true;         // `acm` set: the bank and the class draw per unlabeled image
  double momentum = 0.999;             // kappa's EMA
  // Q4 [Q]: classes absent from the labeled batch decay toward 0 (reference); false: left unchanged.
  bool absent_classes_decay = true;
  // Q7 [Q]: of each replica's loaded unlabeled images one is used (a coin flip, reference); false:
  // all of them. A process's batch holds unlabeled_batch / replica_batch such replica batches.
  bool use_one_unlabeled = true;
  int64_t replica_batch = 2;
  // Q5 [Q]: data parallel, each rank keeps its own kappa and bank (reference; rank 0's are saved);
  // true: one of each, from every rank's measurements.
  bool shared_across_ranks = false;
};

// What one step uses, drawn from the state before it (the reference draws it at the top of the step).
struct AelPlan {
  std::vector<int64_t> paste_classes;  // Q_cat: distinct, ascending
  std::vector<int64_t> keep;           // the loaded unlabeled images the step uses (slots of the batch)
  std::vector<int64_t> mix_classes;    // c* for each kept image
  std::vector<int64_t> bank_images;    // its bank partner n_b (an index into the unlabeled list)
};

class AelState {
 public:
  // kappa starts uniform in [0, 1) from `init` (3 x C; only row 0 is read, A3), the bank all zeros.
  AelState(const AelStateOptions& options, at::Generator init);

  // The plan of a step: a function of the state and of `seed` alone (the caller derives it from
  // the run's seed, rank and step), so a resumed run draws the same.
  AelPlan Plan(uint64_t seed) const;

  // kappa <- momentum * kappa + (1 - momentum) * m (A3; absent classes per absent_classes_decay).
  void UpdateConfidence(const ClassConfidence& m);
  // A5.5: column `image` of the bank becomes `present`.
  void UpdateBank(int64_t image, const std::vector<bool>& present);

  at::Tensor confidence() const;  // C: kappa's row 0
  const at::Tensor& kappa() const { return kappa_; }
  const at::Tensor& bank() const { return bank_; }
  const AelStateOptions& options() const { return options_; }

  // Replaces kappa and the bank (data parallel: rank 0's, so that every rank starts alike, A3).
  void Restore(const at::Tensor& kappa, const at::Tensor& bank);

  // `class_criterion` (3 x C) and `cutmix_bank` (C x N_u), the reference's checkpoint keys.
  void Save(io::Value& root) const;
  void Load(const io::ValuePtr& root, const std::string& source);

 private:
  AelStateOptions options_;
  at::Tensor kappa_;  // 3 x C float
  at::Tensor bank_;   // C x N_u float, 0 or 1
};

// A4.1 and A5.2's class probabilities: softmax(sqrt(1 - kappa)) over T_cat, softmax(1 - kappa) over all.
at::Tensor PasteClassProbabilities(const at::Tensor& kappa_row, const std::vector<int64_t>& paste_classes);
at::Tensor MixClassProbabilities(const at::Tensor& kappa_row);

}  // namespace u2pl::ael
