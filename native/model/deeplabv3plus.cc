#include "model/deeplabv3plus.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include "model/batch_norm.h"
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

namespace u2pl::model {
namespace nn = torch::nn;
namespace {

// conv3x3(bias) BN ReLU Dropout2d, twice, then conv1x1 -> out: indices 0,1,4,5,8 hold parameters.
nn::Sequential PixelHead(int64_t in, int64_t width, int64_t out, double dropout) {
  auto conv3 = [](int64_t i, int64_t o) { return nn::Conv2d(nn::Conv2dOptions(i, o, 3).padding(1).bias(true)); };
  return nn::Sequential(conv3(in, width), BatchNorm2d(width), nn::ReLU(nn::ReLUOptions(true)), nn::Dropout2d(dropout),
                        conv3(width, width), BatchNorm2d(width), nn::ReLU(nn::ReLUOptions(true)), nn::Dropout2d(dropout),
                        nn::Conv2d(nn::Conv2dOptions(width, out, 1).bias(true)));
}

}  // namespace

DeepLabV3PlusDecoderImpl::DeepLabV3PlusDecoderImpl(const DecoderOptions& o) {
  const int64_t p = o.head_planes;
  low_conv = register_module("low_conv", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(o.low_level_planes, p, 1).bias(true)),
                                                        BatchNorm2d(p), nn::ReLU(nn::ReLUOptions(true))));
  aspp = register_module("aspp", ASPP(o.in_planes, o.inner_planes, o.dilations));
  head = register_module("head", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(aspp->out_planes(), p, 3).padding(1).bias(false)),
                                                BatchNorm2d(p), nn::ReLU(nn::ReLUOptions(true)), nn::Dropout2d(o.dropout)));
  classifier = register_module("classifier", PixelHead(2 * p, p, o.num_classes, o.dropout));
  if (o.rep_head) representation = register_module("representation", PixelHead(2 * p, p, o.rep_planes, o.dropout));
}

DecoderOutput DeepLabV3PlusDecoderImpl::forward(const torch::Tensor& x1, const torch::Tensor& x4, bool with_rep) {
  torch::Tensor context = head->forward(aspp->forward(x4));
  torch::Tensor low = low_conv->forward(x1);
  context = at::upsample_bilinear2d(context, {low.size(2), low.size(3)}, /*align_corners=*/true);
  torch::Tensor features = at::cat({low, context}, 1);
  DecoderOutput out;
  out.pred = classifier->forward(features);
  if (representation && with_rep) out.rep = representation->forward(features);
  return out;
}

AuxHeadImpl::AuxHeadImpl(int64_t in_planes, int64_t num_classes, double dropout, int64_t width) {
  aux = register_module("aux", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_planes, width, 3).padding(1).bias(true)),
                                              BatchNorm2d(width), nn::ReLU(nn::ReLUOptions(true)), nn::Dropout2d(dropout),
                                              nn::Conv2d(nn::Conv2dOptions(width, num_classes, 1).bias(true))));
}

}  // namespace u2pl::model
