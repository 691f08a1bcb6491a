// Per-pixel entropy of softmax(logits) after an align-corners bilinear upsampling, fused: the
// upsampled logits and probabilities are never materialised (§9: Ent at H x W from h x w logits).
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

// logits: N x C x h x w (float); returns N x H x W float with ent = -sum_c p_c ln(p_c + 1e-10).
at::Tensor UpsampledEntropy(const at::Tensor& logits, int64_t out_h, int64_t out_w);

}  // namespace u2pl::loss
