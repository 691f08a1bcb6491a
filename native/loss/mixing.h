// Strong augmentation of the unlabeled batch (§8): CutMix, CutOut and ClassMix applied to images,
// pseudo-labels and confidences together. Seeded through the generator passed in.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace u2pl::loss {

enum class MixMode { kCutMix, kCutOut, kClassMix };

struct MixResult {
  at::Tensor images;      // B x 3 x H x W
  at::Tensor labels;      // B x H x W
  at::Tensor confidence;  // B x H x W
  at::Tensor mask;        // B x H x W bool: true where image i keeps its own pixels
};

// The box sampler of §8.3 for one H x W image: mask is true outside the box.
// Box width in [W/2 + 1, W - 1], height round-half-even(H*W/2 / width), position uniform.
at::Tensor CutoutMask(int64_t h, int64_t w, at::Generator generator);

// Partner of image i is (i + 1) mod B. CutOut blanks the box (image 0, label ignore, confidence 0).
// Mixes another B x H x W label map with the mask a Mix() returned (the ground truth of the
// unlabeled batch, for metrics): the partner's pixels outside the mask, ignore there for CutOut.
at::Tensor MixLike(const at::Tensor& labels, const at::Tensor& mask, MixMode mode, int64_t ignore_index = 255);

MixResult Mix(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& confidence, MixMode mode,
              at::Generator generator, int64_t ignore_index = 255);

}  // namespace u2pl::loss
