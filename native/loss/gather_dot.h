// dots[q, j] = <anchors[q], keys[index[q, j]]> and the key norms, without materialising the
// gathered keys (q x n x D): each anchor row stays in cache while its keys stream past. The
// gradient flows to the anchors only (keys are memory-bank entries).
#pragma once

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

struct GatherDotResult {
  at::Tensor dots;       // Q x K, differentiable with respect to anchors
  at::Tensor key_norms;  // Q x K, constant
};

// anchors: Q x D float (requires grad or not); keys: N x D float; index: Q x K int64 rows of keys.
GatherDotResult GatherDot(const at::Tensor& anchors, const at::Tensor& keys, const at::Tensor& index);

}  // namespace u2pl::loss
