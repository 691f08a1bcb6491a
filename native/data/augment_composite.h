// The augmentation of data/augment.h written with ATen ops (interpolate, flip, pad, slice): the
// reference the loop implementation is tested against.
#pragma once

#include <ATen/core/Tensor.h>

#include "data/augment.h"

namespace u2pl::data {

// image: H x W x 3 uint8; label: H x W uint8 (may be undefined). Returns {image 3 x h x w float, label h x w uint8}.
std::pair<at::Tensor, at::Tensor> AugmentComposite(const at::Tensor& image, const at::Tensor& label, const AugmentParams& p);

}  // namespace u2pl::data
