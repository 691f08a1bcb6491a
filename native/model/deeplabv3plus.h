// DeepLabv3+ decoder of U2PL (§4.3): ASPP on x4, low-level branch on x1, classifier and optional
// 256-d representation head at stride 4; and the auxiliary head on layer3 (§4.4).
#pragma once

#include <array>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include "model/aspp.h"

namespace u2pl::model {

struct DecoderOptions {
  int64_t in_planes = 2048;         // x4 channels
  int64_t low_level_planes = 256;   // x1 channels
  int64_t num_classes = 21;
  int64_t inner_planes = 256;
  std::array<int64_t, 3> dilations{12, 24, 36};
  bool rep_head = true;
  int64_t rep_planes = 256;
  int64_t head_planes = 256;       // width of low_conv, head and the pixel heads (256 in U2PL)
  double dropout = 0.1;
};

struct DecoderOutput {
  torch::Tensor pred, rep;  // rep undefined without the representation head
};

class DeepLabV3PlusDecoderImpl : public torch::nn::Module {
 public:
  explicit DeepLabV3PlusDecoderImpl(const DecoderOptions& options);
  // with_rep false skips the representation head (its output undefined).
  DecoderOutput forward(const torch::Tensor& x1, const torch::Tensor& x4, bool with_rep = true);

 private:
  torch::nn::Sequential low_conv{nullptr}, head{nullptr}, classifier{nullptr}, representation{nullptr};
  ASPP aspp{nullptr};
};
TORCH_MODULE(DeepLabV3PlusDecoder);

class AuxHeadImpl : public torch::nn::Module {
 public:
  AuxHeadImpl(int64_t in_planes, int64_t num_classes, double dropout = 0.1, int64_t width = 256);
  torch::Tensor forward(const torch::Tensor& x3) { return aux->forward(x3); }

 private:
  torch::nn::Sequential aux{nullptr};
};
TORCH_MODULE(AuxHead);

}  // namespace u2pl::model
