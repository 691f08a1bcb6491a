// The augmentations of data/augment.h and data/photometric.h written with ATen ops (interpolate,
// flip, pad, slice, conv2d): the references the loop implementations are tested against.
#pragma once

#include <ATen/core/Tensor.h>

#include "data/augment.h"
#include "data/photometric.h"

namespace u2pl::data {

// image: H x W x 3 uint8; label: H x W uint8 (may be undefined). Returns {image 3 x h x w float, label h x w uint8}.
std::pair<at::Tensor, at::Tensor> AugmentComposite(const at::Tensor& image, const at::Tensor& label, const AugmentParams& p);

// image: 3 x H x W normalised float. Returns its strong view, 3 x H x W.
at::Tensor PhotometricComposite(const at::Tensor& image, const PhotometricParams& p);

}  // namespace u2pl::data
