// The InfoNCE terms of the contrastive loss (§10.5), fused: for each anchor, the cosine
// similarities to its prototype and to its K negatives read straight from the memory bank (the
// Q x K x D gathered negatives are never stored), the cross-entropy against the prototype, and
// the gradient with respect to the anchor, all while the anchor's keys are in cache. All classes'
// terms run in one call, over one anchor matrix, so the backward is one node that only scales
// the stored gradient. Keys and prototypes are constants (teacher side).
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

// One class's term: its anchors are rows [begin, end) of the anchor matrix.
struct InfoNceTerm {
  int64_t begin, end;
  int64_t prototype;  // row of the prototypes
  at::Tensor keys;    // N x D float, a bank's storage
  at::Tensor index;   // (end - begin) x K int64 rows of keys (K the same for every term)
};

// anchors: Q x D float (may require grad); prototypes: P x D. Returns the 0-d sum over terms of
// the term's mean over its anchors of
//   logsumexp(z) - z_0,  z = [cos(a, prototype), cos(a, keys[index[i, j]])...] / temperature,
// with cos(a, k) = <a, k> / max(|a| |k|, 1e-8).
at::Tensor InfoNceLoss(const at::Tensor& anchors, const at::Tensor& prototypes, const std::vector<InfoNceTerm>& terms,
                       double temperature);

}  // namespace u2pl::loss
