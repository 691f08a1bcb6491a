// ResNet backbones (18/34 basic blocks, 50/101 bottlenecks) with the reference's deep stem or the
// torchvision stem, stride replaced by dilation per stage, and multi-grid on the last stage.
// Parameter names follow the U2PL reference (and torchvision for the 7x7 stem).
#pragma once

#include <array>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include "model/batch_norm.h"
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>

namespace u2pl::model {

struct ResNetOptions {
  int depth = 101;                                         // 18, 34, 50 or 101
  bool deep_stem = true;                                   // 3x3 64-64-128 stem (reference) vs 7x7 (torchvision)
  std::array<bool, 3> replace_stride_with_dilation{false, true, true};  // layer2/3/4
  bool multi_grid = false;                                 // layer4 dilation factors (2, 2, 4)
  bool zero_init_residual = false;                         // zero the last BN weight of every block
};

// The four stage outputs (x1..x4); the decoder uses x1 and x4, the auxiliary head x3.
struct ResNetFeatures {
  torch::Tensor x1, x2, x3, x4;
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int kExpansion = 1;
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, int64_t dilation, bool downsample);
  torch::Tensor forward(const torch::Tensor& x);
  BatchNorm2d last_bn() { return bn2; }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, int64_t dilation, bool downsample);
  torch::Tensor forward(const torch::Tensor& x);
  BatchNorm2d last_bn() { return bn3; }

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  ResNetFeatures forward(const torch::Tensor& x);

  // Channels of x1 and x4 (what the decoder consumes) and of x3 (the auxiliary head's input).
  int64_t low_level_channels() const { return low_level_channels_; }
  int64_t layer3_channels() const { return layer3_channels_; }
  int64_t out_channels() const { return out_channels_; }
  // Output stride: 32 divided by 2 for each stage whose stride became dilation.
  int output_stride() const { return output_stride_; }

 private:
  torch::nn::Sequential make_layer(int64_t planes, int64_t blocks, int64_t stride, bool dilate, bool multi_grid);

  bool bottleneck_;
  int64_t inplanes_;
  int64_t dilation_ = 1;
  int64_t low_level_channels_ = 0, layer3_channels_ = 0, out_channels_ = 0;
  int output_stride_ = 32;
  torch::nn::Sequential stem_convs{nullptr};  // "conv1" (a Sequential for the deep stem)
  torch::nn::Conv2d stem_conv{nullptr};       // "conv1" (a single 7x7 conv for the torchvision stem)
  BatchNorm2d bn1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace u2pl::model
