#include "model/aspp.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include "model/batch_norm.h"
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>

namespace u2pl::model {
namespace nn = torch::nn;

ASPPImpl::ASPPImpl(int64_t in_planes, int64_t inner_planes, std::array<int64_t, 3> dilations)
    : out_planes_(5 * inner_planes) {
  auto conv_bn_relu = [&](int64_t kernel, int64_t dilation) {
    return nn::Sequential(
        nn::Conv2d(nn::Conv2dOptions(in_planes, inner_planes, kernel).padding(kernel == 3 ? dilation : 0).dilation(dilation).bias(false)),
        BatchNorm2d(inner_planes), nn::ReLU(nn::ReLUOptions(true)));
  };
  conv1 = register_module("conv1", nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})),
                                                  nn::Conv2d(nn::Conv2dOptions(in_planes, inner_planes, 1).bias(false)),
                                                  BatchNorm2d(inner_planes), nn::ReLU(nn::ReLUOptions(true))));
  conv2 = register_module("conv2", conv_bn_relu(1, 1));
  conv3 = register_module("conv3", conv_bn_relu(3, dilations[0]));
  conv4 = register_module("conv4", conv_bn_relu(3, dilations[1]));
  conv5 = register_module("conv5", conv_bn_relu(3, dilations[2]));
}

torch::Tensor DilatedConv3x3(const torch::Tensor& x, const torch::Tensor& weight, int64_t dilation) {
  // Tap offsets are -dilation, 0, +dilation: an outer one reads only padding for every output row
  // when dilation >= height.
  const bool rows = dilation >= x.size(2), cols = dilation >= x.size(3);
  const torch::Tensor w = weight.narrow(2, rows ? 1 : 0, rows ? 1 : 3).narrow(3, cols ? 1 : 0, cols ? 1 : 3);
  return at::conv2d(x, w, {}, /*stride=*/1, /*padding=*/{rows ? 0 : dilation, cols ? 0 : dilation}, /*dilation=*/dilation);
}

namespace {

// A dilated branch (conv, BN, ReLU) with its convolution through DilatedConv3x3.
torch::Tensor DilatedBranch(const nn::Sequential& branch, const torch::Tensor& x) {
  const auto* conv = branch->ptr(0)->as<nn::Conv2d>();
  const torch::Tensor y = DilatedConv3x3(x, conv->weight, (*conv->options.dilation())[0]);
  return branch->ptr(2)->as<nn::ReLU>()->forward(branch->ptr(1)->as<BatchNorm2d>()->forward(y));
}

}  // namespace

torch::Tensor ASPPImpl::forward(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  torch::Tensor pooled = at::upsample_bilinear2d(conv1->forward(x), {h, w}, /*align_corners=*/true);
  return at::cat({pooled, conv2->forward(x), DilatedBranch(conv3, x), DilatedBranch(conv4, x), DilatedBranch(conv5, x)}, 1);
}

}  // namespace u2pl::model
