// Native test without Node (CTest, built with -DU2PL_NATIVE_TESTS=ON): the fused loss kernels
// against the composite references on CPU, and, in a CUDA build on a machine with a GPU, the
// CUDA kernels and the losses on CUDA tensors against the CPU ones, values and gradients, fp32 and
// under bf16 autocast. The same checks as test/losses/*.test.ts at one shape, so that a GPU
// machine without Node can run them (scripts/gpu-check.sh). Exits 1 after a mismatch.
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
#include "loss/contrastive_kernels.h"
#include "loss/cuda/loss_kernels_cuda.h"
#include "loss/info_nce.h"
#include "util/autocast.h"
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

#ifdef U2PL_WITH_CUDA
namespace loss = u2pl::loss;

// The contrastive loss on `device` (kernels, memory bank there) from the same inputs, generator
// seed and initial bank. rep_type bf16: the student embeddings come from a bf16 network and are
// cast to fp32 for the losses, as the trainer does under autocast.
struct ContrastiveRun {
  at::Tensor loss, grad;
  std::vector<at::Tensor> banks;
};
ContrastiveRun RunContrastive(at::Device device, at::ScalarType rep_type, bool paper, const at::Tensor& rep, const at::Tensor& rep_t,
                              const at::Tensor& prob, const at::Tensor& labels, const at::Tensor& pseudo, const at::Tensor& entropy) {
  loss::ContrastiveOptions o;
  o.num_queries = 16;
  o.num_negatives = 8;
  o.low_rank = 1;
  o.high_rank = 6;
  o.paper_negatives = paper;
  o.reference_indexing = !paper;
  const int64_t d = rep.size(1), c = prob.size(1);
  loss::MemoryBank bank(std::vector<int64_t>(c, 400), d, at::TensorOptions().dtype(at::kFloat).device(device));
  for (int64_t k = 0; k < c; ++k) bank.Restore(k, at::randn({50 + 10 * k, d}, at::make_generator<at::CPUGeneratorImpl>(40 + k)).to(device));
  at::Tensor a = rep.to(device, rep_type).requires_grad_(true);
  loss::ContrastiveInputs in{a.to(at::kFloat), rep_t.to(device), prob.to(device), labels.to(device), pseudo.to(device),
                             entropy.to(device), 20};
  ContrastiveRun r;
  r.loss = loss::ContrastiveLoss(in, o, bank, at::make_generator<at::CPUGeneratorImpl>(11)).loss;
  r.loss.backward();
  r.grad = a.grad();
  for (int64_t k = 0; k < c; ++k) r.banks.push_back(bank.Ordered(k));
  return r;
}

// The CUDA kernels, and the losses on CUDA tensors (fp32, then under bf16 autocast), against the CPU
// kernels on the same inputs. Float atomics order the gradients' sums by scheduling: equal to
// rounding, not bit for bit.
void CudaChecks(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& teacher, int64_t H, int64_t W) {
  const at::Device gpu(at::kCUDA);
  const at::Tensor y = labels.to(gpu);
  Check("CUDA entropy vs CPU kernel", loss::cuda::UpsampledEntropy(logits.to(gpu), H, W), loss::UpsampledEntropy(logits, H, W), 1e-5);

  // Cross-entropy: the kernel itself, and the loss through autograd; weighted (ATen's on CUDA) too.
  at::Tensor weight = at::rand({logits.size(1)}) * 4;
  for (const bool weighted : {false, true}) {
    const std::string name = weighted ? "CUDA weighted upsampled cross-entropy" : "CUDA upsampled cross-entropy";
    at::Tensor xc = logits.clone().requires_grad_(true), xg = logits.to(gpu).requires_grad_(true);
    at::Tensor cpu = loss::UpsampledCrossEntropySum(xc, labels, 255, weighted ? weight : at::Tensor());
    at::Tensor cuda = loss::UpsampledCrossEntropySum(xg, y, 255, weighted ? weight.to(gpu) : at::Tensor());
    cpu.backward();
    cuda.backward();
    Check(name + ": value", cuda, cpu, 1e-5);
    Check(name + ": gradient", xg.grad(), xc.grad(), 1e-4);
    if (!weighted) {
      auto [sum, grad] = loss::cuda::UpsampledCrossEntropy(logits.to(gpu), y, 255);
      Check("CUDA upsampled cross-entropy kernel: value", sum, cpu, 1e-5);
      Check("CUDA upsampled cross-entropy kernel: gradient", grad, xc.grad(), 1e-4);
    }
  }

  // Unsupervised loss: entropy percentile, kept pixels, value and gradient.
  {
    at::Tensor sc = logits.clone().requires_grad_(true), sg = logits.to(gpu).requires_grad_(true);
    auto c = loss::UnsupervisedLoss(sc, teacher, labels, 80, loss::UnsupervisedWeighting::kReference);
    auto g = loss::UnsupervisedLoss(sg, teacher.to(gpu), y, 80, loss::UnsupervisedWeighting::kReference);
    c.loss.backward();
    g.loss.backward();
    Check("CUDA unsupervised loss: value", g.loss, c.loss, 1e-5);
    Check("CUDA unsupervised loss: gradient", sg.grad(), sc.grad(), 1e-4);
    Check("CUDA unsupervised loss: entropy threshold", g.threshold, c.threshold, 1e-5);
    Check("CUDA unsupervised loss: kept pixels", g.kept, c.kept, 0);
  }

  // The contrastive masks, both negative rules: equal bit for bit.
  {
    const int64_t m = 3000, classes = 11;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(21);
    at::Tensor q = at::softmax(at::randn({m, classes}, gen) * 2, 1);
    at::Tensor label = at::randint(0, classes, {m}, gen, at::TensorOptions().dtype(at::kLong)).masked_fill(at::rand({m}, gen) < 0.1, -1);
    at::Tensor low = at::rand({m}, gen) < 0.5, high = at::rand({m}, gen) < 0.3;
    for (const bool paper : {false, true}) {
      loss::ContrastiveOptions o;
      o.low_rank = 2;
      o.high_rank = 6;
      o.paper_negatives = paper;
      auto c = loss::ClassMasks(q, label, low, high, m / 2, o);
      auto g = loss::cuda::ClassMasks(q.to(gpu), label.to(gpu), low.to(gpu), high.to(gpu), m / 2, o.current_class_threshold,
                                      o.current_class_negative_threshold, o.low_rank, o.high_rank, paper);
      const std::string rule = paper ? " (paper negatives)" : " (reference negatives)";
      Check("CUDA class masks: anchors" + rule, g.first.to(at::kFloat), c.anchor_ok.to(at::kFloat), 0);
      Check("CUDA class masks: negatives" + rule, g.second.to(at::kFloat), c.negative_ok.to(at::kFloat), 0);
    }
  }

  // InfoNCE: two terms over one anchor matrix, value and gradient.
  {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(31);
    const int64_t q = 48, d = 64, k = 12;
    at::Tensor anchors = at::randn({q, d}, gen), prototypes = at::randn({2, d}, gen), keys = at::randn({300, d}, gen);
    at::Tensor index = at::randint(0, 300, {q, k}, gen, at::TensorOptions().dtype(at::kLong));
    auto terms = [&](at::Device dev) {
      return std::vector<loss::InfoNceTerm>{{0, 20, 1, keys.to(dev), index.slice(0, 0, 20).to(dev)},
                                            {20, q, 0, keys.to(dev), index.slice(0, 20, q).to(dev)}};
    };
    at::Tensor ac = anchors.clone().requires_grad_(true), ag = anchors.to(gpu).requires_grad_(true);
    at::Tensor c = loss::InfoNceLoss(ac, prototypes, terms(at::kCPU), 0.5);
    at::Tensor g = loss::InfoNceLoss(ag, prototypes.to(gpu), terms(gpu), 0.5);
    c.backward();
    g.backward();
    Check("CUDA InfoNCE: value", g, c, 1e-5);
    Check("CUDA InfoNCE: gradient", ag.grad(), ac.grad(), 1e-5);
  }

  // The contrastive loss end to end (same draws from the same generator seed, same banks afterwards).
  const int64_t b = logits.size(0), c = logits.size(1), h = logits.size(2), w = logits.size(3), d = 32;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  at::Tensor rep = at::randn({2 * b, d, h, w}, gen), rep_t = at::randn({2 * b, d, h, w}, gen);
  at::Tensor prob = at::softmax(at::randn({2 * b, c, h, w}, gen) * 2, 1);
  at::Tensor pseudo = at::upsample_nearest2d(at::softmax(teacher, 1).argmax(1).unsqueeze(1).to(at::kFloat), {H, W}).squeeze(1).to(at::kLong);
  at::Tensor entropy = loss::UpsampledEntropy(teacher, H, W);
  for (const bool paper : {false, true}) {
    const std::string rule = paper ? " (paper negatives)" : " (reference negatives)";
    ContrastiveRun cr = RunContrastive(at::kCPU, at::kFloat, paper, rep, rep_t, prob, labels, pseudo, entropy);
    ContrastiveRun gr = RunContrastive(gpu, at::kFloat, paper, rep, rep_t, prob, labels, pseudo, entropy);
    Check("CUDA contrastive loss" + rule + ": value", gr.loss, cr.loss, 1e-5);
    Check("CUDA contrastive loss" + rule + ": gradient", gr.grad, cr.grad, 1e-5);
    for (int64_t k = 0; k < c; ++k) Check("CUDA contrastive loss" + rule + ": bank " + std::to_string(k), gr.banks[k], cr.banks[k], 0);
  }

  // Under bf16 autocast: the network's logits and embeddings are bf16, cast to fp32 for the losses (as
  // the trainer does), which then match the CPU kernels on the same values; the ATen ops among them
  // that autocast lowers to bf16 (the contrastive loss's) set its tolerance. Gradients are bf16.
  {
    u2pl::util::AutocastScope autocast(at::kCUDA, at::kBFloat16);
    const at::Tensor lb = logits.to(at::kBFloat16), tb = teacher.to(at::kBFloat16);
    Check("CUDA autocast entropy", loss::UpsampledEntropy(lb.to(gpu), H, W), loss::UpsampledEntropy(lb.to(at::kFloat), H, W), 1e-5);
    at::Tensor xc = lb.to(at::kFloat).requires_grad_(true), xg = lb.to(gpu).requires_grad_(true);
    at::Tensor cpu = loss::UpsampledCrossEntropySum(xc, labels, 255), cuda = loss::UpsampledCrossEntropySum(xg.to(at::kFloat), y, 255);
    cpu.backward();
    cuda.backward();
    Check("CUDA autocast upsampled cross-entropy: value", cuda, cpu, 1e-5);
    Check("CUDA autocast upsampled cross-entropy: gradient (bf16)", xg.grad(), xc.grad(), 1e-2);
    at::Tensor sc = lb.to(at::kFloat).requires_grad_(true), sg = lb.to(gpu).requires_grad_(true);
    auto uc = loss::UnsupervisedLoss(sc, tb.to(at::kFloat), labels, 80, loss::UnsupervisedWeighting::kReference);
    auto ug = loss::UnsupervisedLoss(sg.to(at::kFloat), tb.to(gpu).to(at::kFloat), y, 80, loss::UnsupervisedWeighting::kReference);
    uc.loss.backward();
    ug.loss.backward();
    Check("CUDA autocast unsupervised loss: value", ug.loss, uc.loss, 1e-5);
    Check("CUDA autocast unsupervised loss: gradient (bf16)", sg.grad(), sc.grad(), 1e-2);
    const at::Tensor rep_b = rep.to(at::kBFloat16).to(at::kFloat);
    ContrastiveRun cr = RunContrastive(at::kCPU, at::kFloat, false, rep_b, rep_t, prob, labels, pseudo, entropy);
    ContrastiveRun gr = RunContrastive(gpu, at::kBFloat16, false, rep_b, rep_t, prob, labels, pseudo, entropy);
    Check("CUDA autocast contrastive loss: value", gr.loss, cr.loss, 1e-2);
    Check("CUDA autocast contrastive loss: gradient (bf16)", gr.grad, cr.grad, 1e-2);
    for (int64_t k = 0; k < c; ++k) Check("CUDA autocast contrastive loss: bank " + std::to_string(k), gr.banks[k], cr.banks[k], 0);
  }
}
#endif

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
    CudaChecks(logits, labels, teacher, H, W);
  } else {
    std::printf("skip CUDA kernels: built with CUDA, but no GPU is visible\n");
  }
#else
  std::printf("skip CUDA kernels: not a CUDA build\n");
#endif
  std::printf("%s\n", failures ? "FAILED" : "passed");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
