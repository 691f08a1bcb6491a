// CUDA twins of the fused CPU loss kernels, compiled only against a CUDA LibTorch
// (U2PL_WITH_CUDA). Same inputs, same maths; float atomics make the gradients' last bits depend
// on scheduling, so CUDA results match the CPU kernels to rounding, not bit for bit.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

namespace u2pl::loss::cuda {

// N x C x h x w float logits -> N x H x W entropy of softmax(align-corners upsample(logits)).
at::Tensor UpsampledEntropy(const at::Tensor& logits, int64_t out_h, int64_t out_w);

// Sum over non-ignored pixels of the CE of the upsampled logits (0-d float) and its gradient with
// respect to the N x C x h x w logits. labels: N x H x W int64.
std::pair<at::Tensor, at::Tensor> UpsampledCrossEntropy(const at::Tensor& logits, const at::Tensor& labels,
                                                        int64_t ignore_index);

// Mean InfoNCE over the Q anchors (0-d float) and its gradient with respect to the Q x D anchors.
std::pair<at::Tensor, at::Tensor> InfoNce(const at::Tensor& anchors, const at::Tensor& prototype, const at::Tensor& keys,
                                          const at::Tensor& index, double temperature);

// C x M anchor and negative masks of the contrastive loss (see loss/contrastive_kernels.h).
std::pair<at::Tensor, at::Tensor> ClassMasks(const at::Tensor& q, const at::Tensor& label, const at::Tensor& low,
                                             const at::Tensor& high, int64_t m_labeled, double delta_p, double delta_n,
                                             int64_t low_rank, int64_t high_rank, bool paper_negatives);

}  // namespace u2pl::loss::cuda
