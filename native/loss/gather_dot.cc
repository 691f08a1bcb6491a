#include "loss/gather_dot.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

namespace u2pl::loss {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class GatherDotFunction : public torch::autograd::Function<GatherDotFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, at::Tensor anchors, at::Tensor keys, at::Tensor index) {
    anchors = anchors.contiguous();
    keys = keys.contiguous();
    index = index.contiguous();
    const int64_t q = anchors.size(0), k = index.size(1), d = anchors.size(1);
    at::Tensor dots = at::empty({q, k}, anchors.options());
    at::Tensor norms = at::empty({q, k}, anchors.options());
    const float* a = anchors.data_ptr<float>();
    const float* kv = keys.data_ptr<float>();
    const int64_t* idx = index.data_ptr<int64_t>();
    float* out = dots.data_ptr<float>();
    float* nrm = norms.data_ptr<float>();
    at::parallel_for(0, q, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float* ai = a + i * d;
        for (int64_t j = 0; j < k; ++j) {
          const float* key = kv + idx[i * k + j] * d;
          float dot = 0, sq = 0;
          for (int64_t c = 0; c < d; ++c) {
            dot += ai[c] * key[c];
            sq += key[c] * key[c];
          }
          out[i * k + j] = dot;
          nrm[i * k + j] = std::sqrt(sq);
        }
      }
    });
    ctx->save_for_backward({keys, index});
    ctx->mark_non_differentiable({norms});
    return {dots, norms};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& keys = saved[0];
    const at::Tensor& index = saved[1];
    at::Tensor grad = grad_outputs[0].contiguous();
    const int64_t q = index.size(0), k = index.size(1), d = keys.size(1);
    at::Tensor grad_anchors = at::zeros({q, d}, keys.options());
    const float* g = grad.data_ptr<float>();
    const float* kv = keys.data_ptr<float>();
    const int64_t* idx = index.data_ptr<int64_t>();
    float* ga = grad_anchors.data_ptr<float>();
    at::parallel_for(0, q, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* gi = ga + i * d;
        for (int64_t j = 0; j < k; ++j) {
          const float w = g[i * k + j];
          const float* key = kv + idx[i * k + j] * d;
          for (int64_t c = 0; c < d; ++c) gi[c] += w * key[c];
        }
      }
    });
    return {grad_anchors, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

GatherDotResult GatherDot(const at::Tensor& anchors, const at::Tensor& keys, const at::Tensor& index) {
  TORCH_CHECK(anchors.dim() == 2 && keys.dim() == 2 && anchors.size(1) == keys.size(1) && index.dim() == 2 &&
                  index.size(0) == anchors.size(0),
              "GatherDot: anchors Q x D, keys N x D, index Q x K expected; got ", anchors.sizes(), ", ", keys.sizes(), ", ",
              index.sizes());
  TORCH_CHECK(anchors.scalar_type() == at::kFloat && keys.scalar_type() == at::kFloat && anchors.is_cpu(),
              "GatherDot runs on float CPU tensors");
  TORCH_CHECK(index.numel() == 0 || (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < keys.size(0)),
              "GatherDot: index outside the ", keys.size(0), " keys");
  variable_list out = GatherDotFunction::apply(anchors, keys.detach(), index.to(at::kLong));
  return {out[0], out[1]};
}

}  // namespace u2pl::loss
