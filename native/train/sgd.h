// SGD with momentum and weight decay (§5.2, PyTorch's semantics: g = grad + wd * p; v = g on the
// first step, then v = mu * v + g; p -= lr * v), one pass over each parameter's memory, and the
// teacher's EMA of the updated parameters in the same pass when asked (§7): one read of each
// gradient, parameter, momentum and teacher value instead of ~8 separate ATen passes.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::train {

class MomentumSgd {
 public:
  // groups: the parameters of each learning-rate group (for U2PL: encoder, aux head, decoder).
  MomentumSgd(std::vector<std::vector<at::Tensor>> groups, double momentum, double weight_decay);

  size_t num_groups() const { return groups_.size(); }
  const std::vector<at::Tensor>& group(size_t g) const { return groups_.at(g); }
  double lr(size_t g) const { return lr_.at(g); }
  void set_lr(size_t g, double lr) { lr_.at(g) = lr; }
  double momentum() const { return momentum_; }
  double weight_decay() const { return weight_decay_; }

  // Parameters through the groups in order, and their momentum buffers (undefined before a
  // parameter's first update); a checkpoint numbers them the same way.
  const std::vector<at::Tensor>& parameters() const { return params_; }
  std::vector<at::Tensor>& momentum_buffers() { return buffers_; }

  // Drops the gradients (the next backward writes fresh ones instead of adding into zeros).
  void ZeroGrad();

  // Updates every parameter that has a gradient, taking grad * grad_scale as its gradient (loss
  // scaling divides by the scale here, with no pass of its own). With `teacher` (one tensor per
  // parameter, in parameters() order), also teacher = decay * teacher + (1 - decay) * updated parameter.
  void Step(const std::vector<at::Tensor>* teacher = nullptr, double decay = 0, double grad_scale = 1);

 private:
  std::vector<std::vector<at::Tensor>> groups_;
  std::vector<double> lr_;
  std::vector<at::Tensor> params_, buffers_;
  std::vector<size_t> group_of_;
  double momentum_, weight_decay_;
};

}  // namespace u2pl::train
