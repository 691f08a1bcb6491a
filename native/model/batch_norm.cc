#include "model/batch_norm.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

namespace u2pl::model {
namespace {

thread_local CrossReplicaOps* current_ops = nullptr;

// Per-channel view of a 1-D statistic for N x C x H x W tensors.
at::Tensor PerChannel(const at::Tensor& v) { return v.view({1, -1, 1, 1}); }

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var, double momentum, double eps,
                            int64_t ops_address) {
    auto& ops = *reinterpret_cast<CrossReplicaOps*>(ops_address);
    const at::Tensor x = input.to(at::kFloat);
    const int64_t channels = x.size(1);
    const double local_n = static_cast<double>(x.numel() / channels);
    // Each replica's mean and sum of squared deviations, combined exactly (parallel variance).
    auto [var, mean] = at::var_mean(x, {0, 2, 3}, /*unbiased=*/false);
    at::Tensor local = at::cat({mean, var * local_n, at::full({1}, local_n, mean.options())});
    std::vector<at::Tensor> all = ops.AllGather(local);
    at::Tensor stacked = at::stack(all);  // R x (2C + 1)
    at::Tensor n = stacked.select(1, 2 * channels);  // R
    at::Tensor means = stacked.slice(1, 0, channels), m2 = stacked.slice(1, channels, 2 * channels);
    // The pixel count stays a tensor: reading it to the host would wait for the GPU in every layer.
    // (Counts are integers, exact in float below 2^24: on the CPU this divides exactly as the host
    // double did; on CUDA it is a true division where the scalar was a multiply by its reciprocal.)
    const at::Tensor total = n.sum();
    at::Tensor global_mean = (means * n.unsqueeze(1)).sum(0) / total;
    at::Tensor global_m2 = (m2 + n.unsqueeze(1) * (means - global_mean).pow(2)).sum(0);
    at::Tensor biased = global_m2 / total;
    {
      at::NoGradGuard no_grad;
      if (running_mean.defined()) running_mean.mul_(1 - momentum).add_(global_mean, momentum);
      if (running_var.defined()) running_var.mul_(1 - momentum).add_(global_m2 / (total - 1).clamp_min(1), momentum);
    }
    at::Tensor invstd = (biased + eps).rsqrt();
    at::Tensor xhat = (x - PerChannel(global_mean)) * PerChannel(invstd);
    at::Tensor out = weight.defined() ? xhat * PerChannel(weight) + PerChannel(bias) : xhat;
    ctx->save_for_backward({x, global_mean, invstd, weight, total});
    ctx->saved_data["ops"] = ops_address;
    ctx->saved_data["dtype"] = static_cast<int64_t>(input.scalar_type());
    return out.to(input.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &mean = saved[1], &invstd = saved[2], &weight = saved[3], &total = saved[4];
    auto& ops = *reinterpret_cast<CrossReplicaOps*>(ctx->saved_data["ops"].toInt());
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const at::Tensor dy = grads[0].to(at::kFloat);
    const at::Tensor xmu = x - PerChannel(mean);
    at::Tensor sum_dy = dy.sum({0, 2, 3});
    at::Tensor sum_dy_xmu = (dy * xmu).sum({0, 2, 3});
    // Weight and bias: this replica's share (the gradient averaging across replicas adds the rest).
    at::Tensor grad_weight = weight.defined() ? sum_dy_xmu * invstd : at::Tensor();
    at::Tensor grad_bias = weight.defined() ? sum_dy.clone() : at::Tensor();
    // Input: the statistics depend on every replica's pixels, so the sums are global.
    at::Tensor sums = at::cat({sum_dy, sum_dy_xmu});
    ops.AllReduceSum(sums);
    const int64_t c = mean.size(0);
    at::Tensor mean_dy = sums.slice(0, 0, c) / total, mean_dy_xmu = sums.slice(0, c, 2 * c) / total;
    at::Tensor scale = weight.defined() ? invstd * weight : invstd;
    at::Tensor grad_input = (dy - PerChannel(mean_dy) - xmu * PerChannel(invstd * invstd * mean_dy_xmu)) * PerChannel(scale);
    return {grad_input.to(dtype), grad_weight, grad_bias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

SyncBatchNormScope::SyncBatchNormScope(CrossReplicaOps* ops) : previous_(current_ops) { current_ops = ops; }
SyncBatchNormScope::~SyncBatchNormScope() { current_ops = previous_; }
CrossReplicaOps* SyncBatchNormScope::Current() { return current_ops; }

at::Tensor SyncBatchNorm(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& running_mean,
                         at::Tensor& running_var, double momentum, double eps, CrossReplicaOps& ops) {
  TORCH_CHECK(input.dim() == 4, "SyncBatchNorm expects N x C x H x W, got ", input.sizes());
  return SyncBatchNormFunction::apply(input, weight, bias, running_mean, running_var, momentum, eps,
                                      reinterpret_cast<int64_t>(&ops));
}

BatchNorm2dImpl::BatchNorm2dImpl(int64_t num_features, double momentum, double eps)
    : num_features_(num_features), momentum_(momentum), eps_(eps) {
  reset();
}

void BatchNorm2dImpl::reset() {
  // The order and names of torch.nn.BatchNorm2d's state dict.
  weight = register_parameter("weight", at::ones({num_features_}));
  bias = register_parameter("bias", at::zeros({num_features_}));
  running_mean = register_buffer("running_mean", at::zeros({num_features_}));
  running_var = register_buffer("running_var", at::ones({num_features_}));
  num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::TensorOptions().dtype(at::kLong)));
}

at::Tensor BatchNorm2dImpl::forward(const at::Tensor& input) {
  TORCH_CHECK(input.dim() == 4, "BatchNorm2d expects N x C x H x W input, got ", input.sizes());
  if (is_training()) {
    at::NoGradGuard no_grad;
    num_batches_tracked += 1;
  }
  CrossReplicaOps* ops = SyncBatchNormScope::Current();
  const bool one_value = input.numel() == input.size(1);
  // A world of one rank too goes through SyncBN's collectives (a one-GPU check of the NCCL path),
  // but for one value per channel, which only the local path below guards.
  if (is_training() && ops != nullptr && !(ops->world_size() == 1 && one_value)) {
    return SyncBatchNorm(input, weight, bias, running_mean, running_var, momentum_, eps_, *ops);
  }
  if (is_training() && one_value) {
    // One value per channel (the image pooling of a one-image batch): torch's unbiased running
    // variance would be 0/0 and every later eval-mode pass NaN; such a batch leaves the running
    // statistics as they are (updating them in place would also break the backward of an earlier
    // pass of the step, which saved them).
    return at::batch_norm(input, weight, bias, {}, {}, true, momentum_, eps_, /*cudnn_enabled=*/true);
  }
  return at::batch_norm(input, weight, bias, running_mean, running_var, is_training(), momentum_, eps_, /*cudnn_enabled=*/true);
}

}  // namespace u2pl::model
