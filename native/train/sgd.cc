#include "train/sgd.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

namespace u2pl::train {
namespace {

// Float tensors of one shape whose memory is dense and laid out alike (contiguous or channels-
// last): one linear pass over their storage updates them element by element.
bool SameDenseLayout(const at::Tensor& a, const at::Tensor& b) {
  return b.scalar_type() == at::kFloat && b.sizes() == a.sizes() && b.strides() == a.strides() && b.device() == a.device() &&
         b.is_non_overlapping_and_dense();
}

}  // namespace

MomentumSgd::MomentumSgd(std::vector<std::vector<at::Tensor>> groups, double momentum, double weight_decay)
    : groups_(std::move(groups)), lr_(groups_.size(), 0.0), momentum_(momentum), weight_decay_(weight_decay) {
  for (size_t g = 0; g < groups_.size(); ++g)
    for (const auto& p : groups_[g]) {
      params_.push_back(p);
      group_of_.push_back(g);
    }
  buffers_.resize(params_.size());
}

void MomentumSgd::ZeroGrad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

void MomentumSgd::Step(const std::vector<at::Tensor>* teacher, double decay, double grad_scale) {
  c10::AutoGradMode no_grad(false);
  TORCH_CHECK(!teacher || teacher->size() == params_.size(), "EMA: the teacher has ", teacher ? teacher->size() : 0,
              " parameters, the student ", params_.size());
  const float mu = static_cast<float>(momentum_), wd = static_cast<float>(weight_decay_);
  const float keep = static_cast<float>(decay), take = static_cast<float>(1.0 - decay);
  const float gs = static_cast<float>(grad_scale);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& grad = p.grad();
    at::Tensor t = teacher ? (*teacher)[i] : at::Tensor();
    if (!grad.defined()) {
      // No gradient (a head the loss does not reach): no update, but the teacher still follows.
      if (t.defined()) t.mul_(decay).add_(p, 1.0 - decay);
      continue;
    }
    const float lr = static_cast<float>(lr_[group_of_[i]]);
    at::Tensor& buffer = buffers_[i];
    const bool first = !buffer.defined();
    if (first) buffer = at::empty_like(p);  // same layout (contiguous or channels-last)
    else if (buffer.strides() != p.strides()) buffer = buffer.contiguous(p.suggest_memory_format());  // e.g. restored, then the layout changed
    // The fused loop runs on host memory; device parameters take the ATen path.
    const bool fused = p.is_cpu() && p.scalar_type() == at::kFloat && p.is_non_overlapping_and_dense() && SameDenseLayout(p, grad) &&
                       SameDenseLayout(p, buffer) && (!t.defined() || SameDenseLayout(p, t));
    if (!fused) {
      // Anything else (other dtypes, mixed layouts): the same maths in ATen ops.
      at::Tensor d = (grad_scale == 1 ? grad : grad * grad_scale).add(p, weight_decay_);
      if (first) buffer.copy_(d);
      else buffer.mul_(momentum_).add_(d);
      p.add_(buffer, -lr_[group_of_[i]]);
      if (t.defined()) t.mul_(decay).add_(p, 1.0 - decay);
      continue;
    }
    float* pp = p.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    float* bp = buffer.data_ptr<float>();
    float* tp = t.defined() ? t.data_ptr<float>() : nullptr;
    at::parallel_for(0, p.numel(), 32768, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const float d = gp[k] * gs + wd * pp[k];
        const float v = first ? d : mu * bp[k] + d;
        bp[k] = v;
        const float updated = pp[k] - lr * v;
        pp[k] = updated;
        if (tp) tp[k] = tp[k] * keep + take * updated;
      }
    });
  }
}

}  // namespace u2pl::train
