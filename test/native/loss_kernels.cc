// Native test without Node (CTest, built with -DU2PL_NATIVE_TESTS=ON): the fused loss kernels
// against the composite references on CPU, and, in a CUDA build on a machine with a GPU, the
// CUDA kernels against the CPU ones. The same checks as test/losses/*.test.ts at one shape, so
// that a GPU machine without Node can run them. Exits 1 on the first mismatch.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "loss/composite/composite.h"
#include "loss/contrastive.h"
#include "loss/entropy.h"
#include "loss/memory_bank.h"
#include "loss/unsupervised.h"
#include "loss/upsampled_cross_entropy.h"
#ifdef U2PL_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include "loss/cuda/loss_kernels_cuda.h"
#endif

namespace {

int failures = 0;

void Check(const std::string& what, const at::Tensor& got, const at::Tensor& want, double tolerance) {
  const double diff = (got.to(at::kDouble).cpu() - want.to(at::kDouble).cpu()).abs().max().item<double>();
  const double scale = std::max(1.0, want.abs().max().item<double>());
  const bool ok = got.sizes() == want.sizes() && diff <= tolerance * scale;
  std::printf("%s %-58s max |diff| %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), diff);
  if (!ok) ++failures;
}

at::Tensor Labels(int64_t b, int64_t h, int64_t w, int64_t classes, uint64_t seed) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor y = at::randint(0, classes, {b, h, w}, g, at::TensorOptions().dtype(at::kLong));
  return y.masked_fill(at::rand({b, h, w}, g) < 0.1, 255);  // some ignored pixels
}

}  // namespace

int main() {
  at::manual_seed(0);
  const int64_t b = 2, c = 11, h = 21, w = 21, H = 81, W = 81;
  at::Tensor logits = at::randn({b, c, h, w}) * 3;
  at::Tensor labels = Labels(b, H, W, c, 1);

  // Entropy of the upsampled softmax.
  Check("entropy: kernel vs composite", u2pl::loss::UpsampledEntropy(logits, H, W),
        u2pl::loss::composite::UpsampledEntropy(logits, H, W), 1e-5);

  // Cross-entropy of upsampled logits: value and gradient.
  at::Tensor x1 = logits.clone().requires_grad_(true), x2 = logits.clone().requires_grad_(true);
  at::Tensor fused = u2pl::loss::UpsampledCrossEntropySum(x1, labels, 255);
  at::Tensor plain = at::cross_entropy_loss(at::upsample_bilinear2d(x2, {H, W}, true), labels, {}, at::Reduction::Sum, 255);
  fused.backward();
  plain.backward();
  Check("upsampled cross-entropy: value", fused, plain, 1e-5);
  Check("upsampled cross-entropy: gradient", x1.grad(), x2.grad(), 1e-4);

  // The same with class weights (criterion.kwargs.class_weight).
  at::Tensor weight = at::rand({c}) * 4;
  at::Tensor x3 = logits.clone().requires_grad_(true), x4 = logits.clone().requires_grad_(true);
  at::Tensor fused_w = u2pl::loss::UpsampledCrossEntropySum(x3, labels, 255, weight);
  at::Tensor plain_w = at::cross_entropy_loss(at::upsample_bilinear2d(x4, {H, W}, true), labels, weight, at::Reduction::Sum, 255);
  fused_w.backward();
  plain_w.backward();
  Check("weighted upsampled cross-entropy: value", fused_w, plain_w, 1e-5);
  Check("weighted upsampled cross-entropy: gradient", x3.grad(), x4.grad(), 1e-4);

  // Unsupervised loss with the entropy percentile.
  at::Tensor teacher = at::randn({b, c, h, w}) * 2;
  at::Tensor s1 = logits.clone().requires_grad_(true), s2 = logits.clone().requires_grad_(true);
  auto k = u2pl::loss::UnsupervisedLoss(s1, teacher, labels, 80, u2pl::loss::UnsupervisedWeighting::kReference);
  auto r = u2pl::loss::composite::UnsupervisedLoss(s2, teacher, labels, 80, u2pl::loss::UnsupervisedWeighting::kReference);
  k.loss.backward();
  r.loss.backward();
  Check("unsupervised loss: value", k.loss, r.loss, 1e-5);
  Check("unsupervised loss: gradient", s1.grad(), s2.grad(), 1e-4);
  if (k.kept.item<int64_t>() != r.kept.item<int64_t>()) {
    std::printf("FAIL unsupervised loss: kept %lld vs %lld\n", static_cast<long long>(k.kept.item<int64_t>()),
                static_cast<long long>(r.kept.item<int64_t>()));
    ++failures;
  }

  // Contrastive loss: same draws from the same generator seed, same banks afterwards.
  const int64_t d = 32;
  at::Tensor rep = at::randn({2 * b, d, h, w}), rep_t = at::randn({2 * b, d, h, w});
  at::Tensor prob = at::softmax(at::randn({2 * b, c, h, w}) * 2, 1);
  at::Tensor pseudo = at::softmax(teacher, 1).argmax(1);
  pseudo = at::upsample_nearest2d(pseudo.unsqueeze(1).to(at::kFloat), {H, W}).squeeze(1).to(at::kLong);
  at::Tensor entropy = u2pl::loss::UpsampledEntropy(teacher, H, W);
  u2pl::loss::ContrastiveOptions o;
  o.num_queries = 16;
  o.num_negatives = 8;
  o.low_rank = 1;
  o.high_rank = 6;
  std::vector<int64_t> capacity(c, 400);
  u2pl::loss::MemoryBank bank(capacity, d, at::TensorOptions().dtype(at::kFloat));
  u2pl::loss::composite::Queues queues{std::vector<at::Tensor>(c, at::empty({0, d})), capacity};
  int64_t processed = 0;
  for (int step = 0; step < 3; ++step) {
    at::Tensor a = rep.clone().requires_grad_(true), z = rep.clone().requires_grad_(true);
    u2pl::loss::ContrastiveInputs in{a, rep_t, prob, labels, pseudo, entropy, 20};
    u2pl::loss::ContrastiveInputs in2{z, rep_t, prob, labels, pseudo, entropy, 20};
    auto kc = u2pl::loss::ContrastiveLoss(in, o, bank, at::make_generator<at::CPUGeneratorImpl>(7 + step));
    auto rc = u2pl::loss::composite::ContrastiveLoss(in2, o, queues, at::make_generator<at::CPUGeneratorImpl>(7 + step));
    kc.loss.backward();
    rc.loss.backward();
    processed += kc.processed_classes;
    Check("contrastive loss step " + std::to_string(step) + ": value", kc.loss, rc.loss, 1e-5);
    Check("contrastive loss step " + std::to_string(step) + ": gradient", a.grad(), z.grad(), 1e-4);
  }
  int64_t filled = 0;
  for (int64_t cls = 0; cls < c; ++cls) {
    Check("memory bank class " + std::to_string(cls), bank.Ordered(cls), queues.keys[cls], 0);
    filled += bank.size(cls) > 0;
  }
  if (processed == 0 || filled == 0) {
    std::printf("FAIL the contrastive case exercised nothing (%lld terms, %lld banks filled)\n", static_cast<long long>(processed),
                static_cast<long long>(filled));
    ++failures;
  }

#ifdef U2PL_WITH_CUDA
  if (at::hasCUDA()) {
    at::Tensor g = logits.cuda();
    Check("CUDA entropy vs CPU kernel", u2pl::loss::cuda::UpsampledEntropy(g, H, W), u2pl::loss::UpsampledEntropy(logits, H, W), 1e-5);
    auto [sum, grad] = u2pl::loss::cuda::UpsampledCrossEntropy(g, labels.cuda(), 255);
    Check("CUDA upsampled cross-entropy: value", sum, plain, 1e-5);
    Check("CUDA upsampled cross-entropy: gradient", grad, x2.grad(), 1e-4);
  } else {
    std::printf("skip CUDA kernels: built with CUDA, but no GPU is visible\n");
  }
#else
  std::printf("skip CUDA kernels: not a CUDA build\n");
#endif
  std::printf("%s\n", failures ? "FAILED" : "passed");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
