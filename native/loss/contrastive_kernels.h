// The per-pixel stages of the contrastive loss (§10.2-10.4) as fused CPU loops, with ATen
// fallbacks for other devices. Each replaces a chain of M x C tensor ops of the composite.
#pragma once

#include <ATen/core/Tensor.h>

#include "loss/contrastive.h"

namespace u2pl::loss {

struct PixelClassMasks {
  at::Tensor anchor_ok;    // C x M bool: reliable pixel of class c with teacher prob > delta_p
  at::Tensor negative_ok;  // C x M bool: negative candidate for class c (reference or paper rule)
};

// q: M x C teacher probabilities (pixel-major); label: M int64 (-1 = none); low, high: M bool
// (A and U of §10.2); the first m_labeled pixels are the labeled images'. The rank of class c at
// a pixel is its position in the descending order of q (ties: lower class index first).
PixelClassMasks ClassMasks(const at::Tensor& q, const at::Tensor& label, const at::Tensor& low, const at::Tensor& high,
                           int64_t m_labeled, const ContrastiveOptions& o);

// Per-class sums of the N x D x P embeddings over the pixels of each class (cls: N*P int64, -1 =
// none): C x D, accumulated in double.
at::Tensor ClassSums(const at::Tensor& ndp, const at::Tensor& cls, int64_t classes);

// Rows (K x D) of the pixels `index` (flat over N x P) of an N x D x P tensor; differentiable
// with respect to ndp (the backward scatters the rows back, one embedding dimension per task).
at::Tensor GatherPixelRows(const at::Tensor& ndp, const at::Tensor& index);

}  // namespace u2pl::loss
