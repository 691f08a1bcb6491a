#include "loss/loss_benchmark.h"

#include <chrono>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include "loss/composite/composite.h"
#include "loss/contrastive.h"
#include "loss/unsupervised.h"

namespace u2pl::loss {

std::vector<double> TimeU2plLosses(const LossBenchmarkSpec& s) {
  c10::AutoGradMode grad(true);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(s.seed);
  const int64_t n = s.labeled + s.unlabeled;
  const auto f = at::TensorOptions().dtype(at::kFloat);
  // The decoder's outputs at stride 4 (h x w) and the labels at full size (H x W).
  at::Tensor student_pred = at::randn({n, s.classes, s.rep_height, s.rep_width}, gen, f).mul_(3).requires_grad_(true);
  at::Tensor teacher_pred = at::randn({n, s.classes, s.rep_height, s.rep_width}, gen, f).mul_(3);
  at::Tensor rep = at::randn({n, s.rep_dim, s.rep_height, s.rep_width}, gen, f).requires_grad_(true);
  at::Tensor rep_teacher = at::randn({n, s.rep_dim, s.rep_height, s.rep_width}, gen, f);
  at::Tensor labels = at::randint(s.classes, {s.labeled, s.height, s.width}, gen, at::TensorOptions().dtype(at::kLong));
  at::Tensor teacher_u = teacher_pred.slice(0, s.labeled);
  at::Tensor pseudo = at::upsample_bilinear2d(teacher_u, {s.height, s.width}, true).argmax(1);

  // Full banks: 50,000 keys for class 0, 30,000 for the others.
  std::vector<int64_t> capacity(s.classes, 30000);
  capacity[0] = 50000;
  MemoryBank bank(capacity, s.rep_dim, f);
  composite::Queues queues{std::vector<at::Tensor>(s.classes), capacity};
  for (int64_t c = 0; c < s.classes; ++c) {
    at::Tensor keys = at::randn({capacity[c], s.rep_dim}, gen, f);
    if (s.composite) queues.keys[c] = keys;
    else bank.Append(c, keys);
  }
  ContrastiveOptions options;
  std::vector<double> seconds;
  for (int64_t i = 0; i < s.warmup + s.runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    at::Tensor student_u = student_pred.slice(0, s.labeled);
    UnsupervisedResult u = s.composite ? composite::UnsupervisedLoss(student_u, teacher_u, pseudo, 80, UnsupervisedWeighting::kReference)
                                       : UnsupervisedLoss(student_u, teacher_u, pseudo, 80, UnsupervisedWeighting::kReference);
    ContrastiveInputs in{rep, rep_teacher, at::softmax(teacher_pred, 1), labels, pseudo, u.entropy, 20, {}, {}, {}};
    ContrastiveResult c = s.composite ? composite::ContrastiveLoss(in, options, queues, gen) : ContrastiveLoss(in, options, bank, gen);
    (u.loss + c.loss).backward();
    student_pred.mutable_grad().reset();
    rep.mutable_grad().reset();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= s.warmup) seconds.push_back(dt);
  }
  return seconds;
}

}  // namespace u2pl::loss
