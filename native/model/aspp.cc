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

torch::Tensor ASPPImpl::forward(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  torch::Tensor pooled = at::upsample_bilinear2d(conv1->forward(x), {h, w}, /*align_corners=*/true);
  return at::cat({pooled, conv2->forward(x), conv3->forward(x), conv4->forward(x), conv5->forward(x)}, 1);
}

}  // namespace u2pl::model
