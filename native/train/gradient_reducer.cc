#include "train/gradient_reducer.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

namespace u2pl::train {

GradientReducer::GradientReducer(std::vector<at::Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm), bucket_of_(params_.size()), position_(params_.size()), seen_(params_.size(), false) {
  // Reverse order: the last layers' gradients come first in the backward.
  Bucket current;
  int64_t elements = 0;
  for (size_t n = params_.size(); n-- > 0;) {
    const at::Tensor& p = params_[n];
    TORCH_CHECK(p.scalar_type() == at::kFloat, "data-parallel gradients: parameters must be float32");
    bucket_of_[n] = buckets_.size();
    position_[n] = current.params.size();
    current.params.push_back(n);
    current.offsets.push_back(elements);
    elements += p.numel();
    if (elements * 4 >= bucket_bytes || n == 0) {
      current.flat = at::zeros({elements}, p.options().requires_grad(false));
      buckets_.push_back(std::move(current));
      current = Bucket();
      elements = 0;
    }
  }
  // The hooks outlive nothing: they reach the reducer through `alive_`, cleared on destruction.
  alive_ = std::make_shared<GradientReducer*>(this);
  for (size_t n = 0; n < params_.size(); ++n) {
    std::weak_ptr<GradientReducer*> self = alive_;
    params_[n].register_hook([self, n](const at::Tensor& grad) {
      if (auto r = self.lock(); r && *r) (*r)->OnGradient(n, grad);
      return at::Tensor();  // the gradient itself is unchanged
    });
  }
}

GradientReducer::~GradientReducer() {
  if (alive_) *alive_ = nullptr;
}

at::Tensor GradientReducer::Slot(const Bucket& b, size_t k) const {
  const at::Tensor& p = params_[b.params[k]];
  return b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
}

void GradientReducer::Prepare() {
  for (auto& b : buckets_) {
    b.ready = 0;
    b.started = false;
    b.pending.reset();
  }
  std::fill(seen_.begin(), seen_.end(), false);
  next_ = 0;
  armed_ = true;
}

void GradientReducer::OnGradient(size_t param, const at::Tensor& grad) {
  if (!armed_) return;
  c10::AutoGradMode no_grad(false);
  Bucket& b = buckets_[bucket_of_[param]];
  at::Tensor slot = Slot(b, position_[param]);
  // A parameter used twice in the graph gets two gradients: they add up, as in .grad.
  if (seen_[param]) slot.add_(grad);
  else {
    slot.copy_(grad);
    seen_[param] = true;
    ++b.ready;
  }
  StartReady();
}

void GradientReducer::StartReady() {
  while (next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].params.size()) {
    Bucket& b = buckets_[next_++];
    b.pending = comm_.AllReduceSumAsync(b.flat);
    b.started = true;
  }
}

void GradientReducer::Finish() {
  c10::AutoGradMode no_grad(false);
  for (auto& b : buckets_)
    for (size_t k = 0; k < b.params.size(); ++k)
      if (!seen_[b.params[k]]) {
        Slot(b, k).zero_();  // no gradient on this rank: it contributes zeros
        seen_[b.params[k]] = true;
        ++b.ready;
      }
  StartReady();
  const double scale = 1.0 / comm_.world_size();
  for (auto& b : buckets_) {
    if (b.pending) b.pending->Wait();
    b.pending.reset();
    b.flat.mul_(scale);
    for (size_t k = 0; k < b.params.size(); ++k) {
      at::Tensor& p = params_[b.params[k]];
      at::Tensor slot = Slot(b, k);
      if (p.grad().defined()) p.mutable_grad().copy_(slot);
      else p.mutable_grad() = slot.clone(at::MemoryFormat::Preserve).contiguous(p.suggest_memory_format());
    }
  }
  armed_ = false;
}

}  // namespace u2pl::train
