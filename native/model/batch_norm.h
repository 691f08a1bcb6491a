// BatchNorm2d of the U2PL networks (momentum 0.1, eps 1e-5, affine, running statistics, §4.6):
// ATen's batch_norm, or batch statistics synchronised across data-parallel replicas (SyncBN:
// statistics over the global batch) in the train-mode passes that run inside a
// SyncBatchNormScope. Its parameters and buffers have LibTorch's BatchNorm2d names, so state dicts
// and checkpoints are unchanged. (Own module rather than a subclass: Debian's LibTorch does not
// export the virtual members a subclass of torch::nn::BatchNorm2dImpl would need.)
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace u2pl::model {

// What SyncBN needs from the process group (the trainer supplies it; this layer knows no c10d).
class CrossReplicaOps {
 public:
  virtual ~CrossReplicaOps() = default;
  virtual int world_size() const = 0;
  // Every replica's tensor (one shape everywhere), in rank order.
  virtual std::vector<at::Tensor> AllGather(const at::Tensor& tensor) = 0;
  virtual void AllReduceSum(at::Tensor& tensor) = 0;
};

// While alive, BatchNorm2d layers in training mode on this thread synchronise through `ops`.
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(CrossReplicaOps* ops);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;
  static CrossReplicaOps* Current();

 private:
  CrossReplicaOps* previous_;
};

class BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(int64_t num_features, double momentum = 0.1, double eps = 1e-5);
  void reset() override;
  at::Tensor forward(const at::Tensor& input);

  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  int64_t num_features_;
  double momentum_, eps_;
};
TORCH_MODULE(BatchNorm2d);

// The synchronised batch norm itself (tests call it directly): statistics over every replica's
// batch (means and squared deviations combined exactly), running statistics updated with the
// unbiased global variance, and a backward whose input gradient sums over replicas while the
// weight and bias gradients stay local (data-parallel averaging then gives the global gradient).
at::Tensor SyncBatchNorm(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& running_mean,
                         at::Tensor& running_var, double momentum, double eps, CrossReplicaOps& ops);

}  // namespace u2pl::model
