// Adaptive CutMix (ACM) of the AEL variant (u2pl-ael-method.md A5): the box comes from a connected
// region of a sampled class in the teacher's prediction of the bank image, else from a random
// sampler; the cutmix bank records which classes each unlabeled image showed.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace u2pl::ael {

struct Box {
  int64_t top = 0, left = 0, height = 0, width = 0;  // rows [top, top + height), columns [left, left + width)
  bool from_component = false;                        // false: the random fallback
};

// A5.3: the 8-connected components of (prediction == cls) in an H x W class map, in an order
// shuffled with `generator`; the tight bounding box of the first with more than min_pixels
// pixels, or nothing when cls is absent or no component is large enough.
std::optional<Box> ComponentBox(const at::Tensor& prediction, int64_t cls, double min_pixels, at::Generator generator);

// A5.6: the random fallback box (area about H*W/2, each side at least half the image's), four
// uniform draws from `generator` in the reference's order.
Box RandomBox(int64_t h, int64_t w, at::Generator generator);

// H x W mask, true inside the box (the pixels taken from the bank image; the opposite of §8.3).
at::Tensor BoxMask(const Box& box, int64_t h, int64_t w, const at::TensorOptions& options);

// A5.5: for each class, whether it covers at least min_pixels pixels of an H x W class map
// (a column of the cutmix bank).
std::vector<bool> ClassPresence(const at::Tensor& prediction, int64_t classes, double min_pixels);

}  // namespace u2pl::ael
