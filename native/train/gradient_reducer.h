// The data-parallel gradient average (what PyTorch's DDP does after each backward): parameters in
// buckets of about 25 MB, in reverse order (the order the backward produces their gradients); a
// bucket's all-reduce starts as soon as its last gradient is in, so communication overlaps the
// rest of the backward. Buckets start in the same order on every rank (a collective must).
#pragma once

#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "train/distributed.h"

namespace u2pl::train {

class GradientReducer {
 public:
  GradientReducer(std::vector<at::Tensor> params, Communicator& comm, int64_t bucket_bytes = 25 << 20);
  ~GradientReducer();

  // Arms the hooks for the coming backward.
  void Prepare();
  // After the backward: starts the buckets still waiting (a parameter without a gradient counts as
  // zeros), waits for all, and leaves the average over the ranks in every parameter's .grad.
  void Finish();

 private:
  struct Bucket {
    at::Tensor flat;                       // float32, the bucket's gradients end to end
    std::vector<size_t> params;            // indices into params_
    std::vector<int64_t> offsets;          // element offset of each parameter in flat
    size_t ready = 0;
    std::unique_ptr<PendingCollective> pending;
    bool started = false;
  };

  void OnGradient(size_t param, const at::Tensor& grad);
  void StartReady();
  at::Tensor Slot(const Bucket& b, size_t k) const;

  std::vector<at::Tensor> params_;
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_, position_;  // per parameter: its bucket and place in it
  std::vector<bool> seen_;
  size_t next_ = 0;  // the next bucket to start (they start in order)
  bool armed_ = false;
  std::shared_ptr<GradientReducer*> alive_;  // what the parameters' hooks reach the reducer through
};

}  // namespace u2pl::train
