#include "model/resnet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>

namespace u2pl::model {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv3x3(int64_t in, int64_t out, int64_t stride = 1, int64_t dilation = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(dilation).dilation(dilation).bias(false));
}

nn::Conv2d Conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

nn::Sequential Projection(int64_t in, int64_t out, int64_t stride) {
  return nn::Sequential(Conv1x1(in, out, stride), BatchNorm2d(out));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, int64_t dilation, bool with_downsample) {
  conv1 = register_module("conv1", Conv3x3(inplanes, planes, stride, dilation));
  bn1 = register_module("bn1", BatchNorm2d(planes));
  conv2 = register_module("conv2", Conv3x3(planes, planes, 1, dilation));
  bn2 = register_module("bn2", BatchNorm2d(planes));
  if (with_downsample) downsample = register_module("downsample", Projection(inplanes, planes * kExpansion, stride));
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, int64_t dilation, bool with_downsample) {
  conv1 = register_module("conv1", Conv1x1(inplanes, planes));
  bn1 = register_module("bn1", BatchNorm2d(planes));
  conv2 = register_module("conv2", Conv3x3(planes, planes, stride, dilation));
  bn2 = register_module("bn2", BatchNorm2d(planes));
  conv3 = register_module("conv3", Conv1x1(planes, planes * kExpansion));
  bn3 = register_module("bn3", BatchNorm2d(planes * kExpansion));
  if (with_downsample) downsample = register_module("downsample", Projection(inplanes, planes * kExpansion, stride));
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  // In-place ReLU and residual add, as the reference: less memory traffic, same gradients.
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out)).relu_();
  out = bn3(conv3(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

ResNetImpl::ResNetImpl(const ResNetOptions& options) {
  std::array<int64_t, 4> blocks;
  switch (options.depth) {
    case 18: blocks = {2, 2, 2, 2}; bottleneck_ = false; break;
    case 34: blocks = {3, 4, 6, 3}; bottleneck_ = false; break;
    case 50: blocks = {3, 4, 6, 3}; bottleneck_ = true; break;
    case 101: blocks = {3, 4, 23, 3}; bottleneck_ = true; break;
    default: throw std::invalid_argument("ResNet depth must be 18, 34, 50 or 101, got " + std::to_string(options.depth));
  }
  if (options.deep_stem) {
    inplanes_ = 128;
    stem_convs = register_module("conv1", nn::Sequential(Conv3x3(3, 64, 2), BatchNorm2d(64), nn::ReLU(nn::ReLUOptions(true)),
                                                         Conv3x3(64, 64), BatchNorm2d(64), nn::ReLU(nn::ReLUOptions(true)),
                                                         Conv3x3(64, inplanes_)));
    maxpool = register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1).ceil_mode(true)));
  } else {
    inplanes_ = 64;
    stem_conv = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
    maxpool = register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  }
  bn1 = register_module("bn1", BatchNorm2d(inplanes_));

  const auto& dilate = options.replace_stride_with_dilation;
  layer1 = register_module("layer1", make_layer(64, blocks[0], 1, false, false));
  low_level_channels_ = inplanes_;
  layer2 = register_module("layer2", make_layer(128, blocks[1], 2, dilate[0], false));
  layer3 = register_module("layer3", make_layer(256, blocks[2], 2, dilate[1], false));
  layer3_channels_ = inplanes_;
  layer4 = register_module("layer4", make_layer(512, blocks[3], 2, dilate[2], options.multi_grid));
  out_channels_ = inplanes_;
  for (bool d : dilate) output_stride_ /= d ? 2 : 1;

  // Kaiming-normal (fan-out, ReLU) for convolutions, BN weight 1 / bias 0 (reference §4.6).
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
  if (options.zero_init_residual) {
    for (auto& module : modules(false)) {
      if (auto* block = module->as<Bottleneck>()) nn::init::zeros_(block->last_bn()->weight);
      if (auto* block = module->as<BasicBlock>()) nn::init::zeros_(block->last_bn()->weight);
    }
  }
}

torch::nn::Sequential ResNetImpl::make_layer(int64_t planes, int64_t blocks, int64_t stride, bool dilate, bool multi_grid) {
  const int64_t expansion = bottleneck_ ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
  const int64_t previous_dilation = dilation_;
  if (dilate) {
    dilation_ *= stride;
    stride = 1;
  }
  const bool downsample = stride != 1 || inplanes_ != planes * expansion;
  std::vector<int64_t> grids(blocks, 1);
  if (multi_grid) {
    const int64_t pattern[3] = {2, 2, 4};
    for (int64_t i = 0; i < blocks; ++i) grids[i] = pattern[std::min<int64_t>(i, 2)];
  }
  nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    // The first block keeps the previous running dilation; the rest use the new one (§4.1).
    const int64_t dilation = (i == 0 ? previous_dilation : dilation_) * grids[i];
    const int64_t block_stride = i == 0 ? stride : 1;
    const bool block_downsample = i == 0 && downsample;
    if (bottleneck_) layer->push_back(Bottleneck(inplanes_, planes, block_stride, dilation, block_downsample));
    else layer->push_back(BasicBlock(inplanes_, planes, block_stride, dilation, block_downsample));
    inplanes_ = planes * expansion;
  }
  return layer;
}

ResNetFeatures ResNetImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = stem_convs ? stem_convs->forward(input) : stem_conv->forward(input);
  x = maxpool(bn1(x).relu_());
  ResNetFeatures f;
  f.x1 = layer1->forward(x);
  f.x2 = layer2->forward(f.x1);
  f.x3 = layer3->forward(f.x2);
  f.x4 = layer4->forward(f.x3);
  return f;
}

}  // namespace u2pl::model
