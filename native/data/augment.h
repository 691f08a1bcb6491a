// Per-sample "weak" augmentation of §3 on raw buffers: normalise, fixed resize, random resize
// (both: image bilinear with half-pixel centres, label nearest), optional 5x5 Gaussian blur,
// horizontal flip, crop with padding. Plain loops, no ATen: it runs on the libuv pool beside the training step, where
// LibTorch's OpenMP teams would compete with the step's.
#pragma once

#include <cstdint>

namespace u2pl::data {

struct AugmentParams {
  int64_t height = 0, width = 0;                // source size
  int64_t resized_height = 0, resized_width = 0;  // after the fixed resize (= source for none)
  int64_t scaled_height = 0, scaled_width = 0;  // after the random resize (= resized for none)
  bool blur = false;
  bool flip = false;
  int64_t crop_top = 0, crop_left = 0;          // offset inside the padded, scaled image
  int64_t crop_height = 0, crop_width = 0;
  float mean[3] = {123.675f, 116.28f, 103.53f};
  float std[3] = {58.395f, 57.12f, 57.375f};
  uint8_t label_pad = 0;                        // reference pads labels with class 0 [Q]
};

// Checks sizes and offsets; throws std::invalid_argument naming the bad value.
void ValidateAugmentParams(const AugmentParams& p);

// image: H x W x 3 (RGB, interleaved); label: H x W or nullptr.
// out_image: 3 x crop_h x crop_w (planar, normalised); out_label: crop_h x crop_w (if label).
void Augment(const uint8_t* image, const uint8_t* label, const AugmentParams& p, float* out_image, uint8_t* out_label);

}  // namespace u2pl::data
