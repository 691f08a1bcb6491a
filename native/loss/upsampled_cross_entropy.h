// Cross-entropy of align-corners bilinearly upsampled logits against full-resolution labels,
// fused: the upsampled logits (B x C x H x W, 4.3 M values for 2 x 21 x 321²) are never stored.
// The gradient with respect to the low-resolution logits is computed in the same pass (it is
// softmax - one-hot, pulled back through the interpolation) and the backward only scales it.
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

// logits: N x C x h x w (any float type, may require grad); labels: N x H x W int64 with values in
// [0, C) or ignore_index. Returns the 0-d float SUM of -log softmax(up(logits))[label] over the
// non-ignored pixels (0 when there are none), differentiable with respect to logits. class_weight
// (optional, C floats): each pixel's term is multiplied by its label's weight.
at::Tensor UpsampledCrossEntropySum(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index,
                                    const at::Tensor& class_weight = {});

}  // namespace u2pl::loss
