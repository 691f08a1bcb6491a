// The contrastive loss of U2PL (§10): per class, reliable student embeddings (anchors) are pulled
// to the class prototype and pushed from negatives sampled from a class-wise memory bank filled
// with teacher embeddings of unreliable pixels. All classes are handled in one pass over the
// pixels; only the per-class sampling and InfoNCE loop over classes, in native code.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "loss/memory_bank.h"

namespace u2pl::loss {

struct ContrastiveOptions {
  double current_class_threshold = 0.3;           // delta_p: anchors need teacher prob > this
  double current_class_negative_threshold = 1.0;  // delta_n: negatives need teacher prob < this
  int64_t low_rank = 3, high_rank = 20;           // r_l, r_h
  double temperature = 0.5;
  int64_t num_queries = 256, num_negatives = 50;
  bool negative_high_entropy = true;  // U_u from the entropy percentile (else every unlabeled pixel)
  bool reference_indexing = true;     // [Q] anchors of class i vs negatives of the i-th valid class
  bool paper_negatives = false;       // [Q] negatives as the paper defines them
  int64_t ignore_index = 255;
};

// Data parallel (§10.4): every rank's keys of this step (each sorted by class) with their per-class
// counts, in rank order, so that all ranks enqueue the same keys in the same order.
using GatherKeys = std::function<std::vector<std::pair<at::Tensor, at::Tensor>>(const at::Tensor& keys, const at::Tensor& per_class)>;

struct ContrastiveInputs {
  at::Tensor rep;           // (B_l + B_u) x D x h x w, student, requires grad
  at::Tensor rep_teacher;   // same shape, teacher (train mode)
  at::Tensor prob_teacher;  // (B_l + B_u) x C x h x w, softmax of the teacher's pred at h x w
  at::Tensor labels;        // B_l x H x W ground truth
  at::Tensor pseudo;        // B_u x H x W (mixed) pseudo-labels
  at::Tensor entropy;       // B_u x H x W teacher entropy
  double alpha = 20;        // alpha_t, percent
  GatherKeys gather_keys;   // unset: one process
  // The unlabeled rows' reliable (A_u) and unreliable (U_u) masks, B_u x H x W bool, when the caller
  // decides them (the AEL variant, u2pl-ael-method.md A8); unset: from the entropy and alpha (§10.2).
  at::Tensor reliable_u, unreliable_u;
};

struct ContrastiveResult {
  at::Tensor loss;                // 0-d, connected to rep
  int64_t valid_classes = 0;      // n_v
  int64_t processed_classes = 0;  // classes that contributed a term
  std::vector<int64_t> enqueued;  // keys appended per class this step
};

// Appends this step's negatives to `bank` (before sampling from it, as the reference does).
ContrastiveResult ContrastiveLoss(const ContrastiveInputs& in, const ContrastiveOptions& options, MemoryBank& bank,
                                  at::Generator generator);

// Legacy nearest downsampling of N x H x W labels/masks to h x w (source = floor(dst * in/out)).
at::Tensor NearestDownsample(const at::Tensor& maps, int64_t h, int64_t w);

}  // namespace u2pl::loss
