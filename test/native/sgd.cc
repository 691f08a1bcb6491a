// Native test (CTest): the fused SGD + EMA pass against LibTorch's torch::optim::SGD followed by
// the teacher's EMA in ATen ops, over several steps, two learning-rate groups, contiguous and
// channels-last parameters and one parameter without a gradient; on CPU (the fused loop) and, with
// a GPU, on CUDA (its ATen path). Exits 1 on a mismatch.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <type_traits>

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>

#include "train/sgd.h"

namespace {

int failures = 0;

// An optimizer's state for a parameter: LibTorch 1.x keys it by the TensorImpl address printed as a
// string, 2.x by the address itself.
template <typename State>
torch::optim::OptimizerParamState& StateOf(State& state, const at::Tensor& p) {
  if constexpr (std::is_same_v<typename State::key_type, std::string>) {
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return *state.at(key.str());
  } else {
    return *state.at(p.unsafeGetTensorImpl());
  }
}

void Check(const std::string& what, const at::Tensor& got, const at::Tensor& want) {
  const double diff = (got - want).abs().max().item<double>();
  const double scale = std::max(1.0, want.abs().max().item<double>());
  const bool ok = diff <= 2e-6 * scale && got.strides() == want.strides();
  std::printf("%s %-44s max |diff| %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), diff);
  if (!ok) ++failures;
}

std::vector<at::Tensor> Params(uint64_t seed, at::Device device) {
  at::manual_seed(seed);
  std::vector<at::Tensor> p = {at::randn({64, 32, 3, 3}).contiguous(at::MemoryFormat::ChannelsLast), at::randn({64}),
                               at::randn({100000}), at::randn({11, 256}), at::randn({7})};
  for (auto& t : p) t = t.to(device);
  return p;
}

void Run(at::Device device) {
  std::printf("on %s\n", device.str().c_str());
  const double momentum = 0.9, weight_decay = 1e-4, decay = 0.99;
  std::vector<at::Tensor> fused = Params(1, device), plain = Params(1, device), teacher = Params(2, device),
                          teacher_plain = Params(2, device);
  for (auto* set : {&fused, &plain}) for (auto& p : *set) p.requires_grad_(true);
  u2pl::train::MomentumSgd sgd({{fused[0], fused[1]}, {fused[2], fused[3], fused[4]}}, momentum, weight_decay);
  using torch::optim::SGDOptions;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{plain[0], plain[1]}, std::make_unique<SGDOptions>(SGDOptions(0).momentum(momentum).weight_decay(weight_decay)));
  groups.emplace_back(std::vector<at::Tensor>{plain[2], plain[3], plain[4]}, std::make_unique<SGDOptions>(SGDOptions(0).momentum(momentum).weight_decay(weight_decay)));
  torch::optim::SGD reference(std::move(groups), SGDOptions(0));
  for (int step = 0; step < 4; ++step) {
    const double lr_backbone = 0.01 * (1.0 - step / 10.0), lr_head = 10 * lr_backbone;
    sgd.set_lr(0, lr_backbone);
    sgd.set_lr(1, lr_head);
    static_cast<SGDOptions&>(reference.param_groups()[0].options()).lr(lr_backbone);
    static_cast<SGDOptions&>(reference.param_groups()[1].options()).lr(lr_head);
    at::manual_seed(100 + step);
    std::vector<at::Tensor> grads;
    for (size_t i = 0; i < fused.size(); ++i)
      grads.push_back(at::randn(fused[i].sizes()).to(device).contiguous(fused[i].suggest_memory_format()));
    sgd.ZeroGrad();
    reference.zero_grad();
    for (size_t i = 0; i < fused.size(); ++i) {
      if (i == 4 && step < 2) continue;  // no gradient for a while: no update, the teacher still follows
      fused[i].mutable_grad() = grads[i].clone();
      plain[i].mutable_grad() = grads[i].clone();
    }
    sgd.Step(&teacher, decay);
    reference.step();
    {
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < plain.size(); ++i) teacher_plain[i].mul_(decay).add_(plain[i], 1 - decay);
    }
    for (size_t i = 0; i < fused.size(); ++i) {
      Check("step " + std::to_string(step) + " parameter " + std::to_string(i), fused[i].detach(), plain[i].detach());
      Check("step " + std::to_string(step) + " teacher " + std::to_string(i), teacher[i], teacher_plain[i]);
    }
  }
  // The momentum buffers are PyTorch's (what checkpoints hold).
  for (size_t i = 0; i < fused.size(); ++i) {
    auto& state = static_cast<torch::optim::SGDParamState&>(StateOf(reference.state(), plain[i]));
    Check("momentum buffer " + std::to_string(i), sgd.momentum_buffers()[i], state.momentum_buffer());
  }
}

}  // namespace

int main() {
  Run(at::kCPU);
  if (at::hasCUDA()) Run(at::kCUDA);
  std::printf("%s\n", failures ? "FAILED" : "passed");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
