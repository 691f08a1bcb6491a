// One class's InfoNCE term of the contrastive loss (§10.5), fused: for each anchor, the cosine
// similarities to its prototype and to its K negatives read straight from the memory bank (the
// Q x K x D gathered negatives are never stored), the cross-entropy against the prototype, and
// the gradient with respect to the anchor, all while the anchor's keys are in cache. The
// backward only scales the stored gradient. Keys and prototype are constants (teacher side).
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

// anchors: Q x D float (may require grad); prototype: D; keys: N x D (a bank's storage);
// index: Q x K int64 rows of keys. Returns the 0-d mean over anchors of
//   logsumexp(z) - z_0,  z = [cos(a, prototype), cos(a, keys[index[q, j]])...] / temperature,
// with cos(a, k) = <a, k> / max(|a| |k|, 1e-8).
at::Tensor InfoNceLoss(const at::Tensor& anchors, const at::Tensor& prototype, const at::Tensor& keys,
                       const at::Tensor& index, double temperature);

}  // namespace u2pl::loss
