// Prediction for evaluation and inference (§13): whole-image with optional scales and flip, and
// the sliding-window evaluation of the Cityscapes protocol. Models run in eval mode, no grad.
#pragma once

#include <vector>

#include "model/segmentation_model.h"

namespace u2pl::model {

struct InferenceOptions {
  bool sliding = false;
  std::vector<double> scales{1.0};
  bool flip = false;
  int64_t crop_h = 769, crop_w = 769;  // sliding window size (the reference's crop_h x crop_w)
  double stride_rate = 2.0 / 3.0;      // in (0, 1]
  int64_t base_size = 0;       // sliding: long side at scale 1 (0 = the image's own)
  at::ScalarType autocast = at::ScalarType::Undefined;
  bool channels_last = false;
};

// Throws when an option cannot work (a window of 0 pixels, a scale <= 0, ...), naming it.
void CheckInferenceOptions(const InferenceOptions& options);

// image: 1 x 3 x H x W normalised. Returns 1 x C x H x W logits (summed over scales and flips).
at::Tensor PredictLogits(SegmentationModel& model, const at::Tensor& image, const InferenceOptions& options);

// Logits of `pred` upsampled (align-corners) to the labels, argmax, confusion matrix (C x C).
at::Tensor EvaluateBatch(SegmentationModel& model, const at::Tensor& images, const at::Tensor& labels, int64_t ignore_index,
                         const InferenceOptions& options);

}  // namespace u2pl::model
