// The U2PL network: ResNet encoder + DeepLabv3+ decoder (+ auxiliary head), named like the
// reference's ModelBuilder so state dicts match key for key (encoder.*, decoder.*, auxor.*).
#pragma once

#include <optional>

#include <torch/nn/module.h>

#include "model/deeplabv3plus.h"
#include "model/resnet.h"

namespace u2pl::model {

struct ModelOptions {
  ResNetOptions encoder;
  int64_t num_classes = 21;
  int64_t inner_planes = 256;
  int64_t head_planes = 256;     // port option: decoder width (256 in U2PL)
  std::array<int64_t, 3> dilations{12, 24, 36};
  bool rep_head = true;
  bool aux = false;              // auxiliary head on layer3 (net.aux_loss present)
  int64_t aux_planes = 0;        // its input width; 0 = layer3's channels
  double dropout = 0.1;
};

struct ModelOutput {
  torch::Tensor pred;  // N x C x H/4 x W/4 logits
  torch::Tensor rep;   // N x 256 x H/4 x W/4 (undefined without rep head)
  torch::Tensor aux;   // N x C x H/8 x W/8 (undefined without aux head; stride follows the encoder)
};

class SegmentationModelImpl : public torch::nn::Module {
 public:
  explicit SegmentationModelImpl(const ModelOptions& options);
  // pred_only (eval mode only): the representation and auxiliary heads are skipped, a third of an
  // R50 pass at stride 4; in train mode their BN statistics would miss the batch.
  ModelOutput forward(const torch::Tensor& images, bool pred_only = false);
  const ModelOptions& options() const { return options_; }

 private:
  ModelOptions options_;
  ResNet encoder{nullptr};
  DeepLabV3PlusDecoder decoder{nullptr};
  AuxHead auxor{nullptr};
};
TORCH_MODULE(SegmentationModel);

}  // namespace u2pl::model
