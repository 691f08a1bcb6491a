// The strong view of an unlabeled image (FixMatch / UniMatch style): colour jitter, grayscale and
// Gaussian blur on one already augmented, normalised 3 x H x W image, for the student's input while
// the teacher's pseudo-labels come from the weak view. Plain loops, no ATen, like augment.h: it runs
// on the libuv pool beside the training step.
#pragma once

#include <cstdint>

namespace u2pl::data {

struct PhotometricParams {
  int64_t height = 0, width = 0;
  float mean[3] = {123.675f, 116.28f, 103.53f};  // of the normalisation (0-255 scale)
  float std[3] = {58.395f, 57.12f, 57.375f};
  // Colour jitter (torchvision's ColorJitter without hue): factors, 1 = unchanged, applied in
  // `order` (0 brightness, 1 contrast, 2 saturation), clamped to [0, 1] after each.
  bool jitter = false;
  float brightness = 1, contrast = 1, saturation = 1;
  int order[3] = {0, 1, 2};
  bool grayscale = false;  // after the jitter: every channel becomes the luma
  float blur_sigma = 0;    // > 0: Gaussian blur, radius ceil(3 sigma), edges replicated
};

// Throws std::invalid_argument naming the bad value.
void ValidatePhotometricParams(const PhotometricParams& p);

// in, out: 3 x height x width normalised (may not alias).
void Photometric(const float* in, const PhotometricParams& p, float* out);

}  // namespace u2pl::data
