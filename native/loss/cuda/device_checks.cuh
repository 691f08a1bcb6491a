// The kernels take raw pointers: a tensor on another device (the CPU, another GPU) would be an
// illegal address, which poisons the CUDA context for the rest of the process. The wrappers refuse
// it first, with an error the caller can catch.
#pragma once

#include <initializer_list>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace u2pl::loss::cuda {

inline void CheckSameDevice(const char* kernel, const at::Tensor& first, std::initializer_list<const at::Tensor*> others) {
  for (const at::Tensor* t : others)
    TORCH_CHECK(t->device() == first.device(), kernel, ": every input must be on ", first.device(), ", one is on ", t->device());
}

}  // namespace u2pl::loss::cuda
