// Atrous spatial pyramid pooling (§4.2): image pooling, 1x1, and three dilated 3x3 branches.
#pragma once

#include <array>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

namespace u2pl::model {

// A 3x3 convolution with padding = dilation, computed without the kernel rows (columns) whose taps
// all fall in the zero padding: where dilation >= the map's height (width), only the middle row
// (column) of the kernel ever meets the image. The same values and gradients as at::conv2d (the
// skipped taps add zeros and get zero gradient), for much less work at small maps: camvid-small's
// 11x11 maps at output stride 16 make its dilation 12 and 18 branches 1x1 convolutions.
torch::Tensor DilatedConv3x3(const torch::Tensor& x, const torch::Tensor& weight, int64_t dilation);

class ASPPImpl : public torch::nn::Module {
 public:
  ASPPImpl(int64_t in_planes, int64_t inner_planes, std::array<int64_t, 3> dilations);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t out_planes() const { return out_planes_; }

 private:
  // conv1 = pooling branch (pool, conv, BN, ReLU); conv2 = 1x1; conv3..5 = dilated 3x3.
  torch::nn::Sequential conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv4{nullptr}, conv5{nullptr};
  int64_t out_planes_;
};
TORCH_MODULE(ASPP);

}  // namespace u2pl::model
