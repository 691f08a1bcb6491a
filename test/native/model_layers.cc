// Native test without Node (CTest, built with -DU2PL_NATIVE_TESTS=ON): the model's own layer
// shortcuts against the plain LibTorch op they replace, values and gradients. Exits 1 after a mismatch.
#include <cstdio>
#include <string>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "model/aspp.h"

namespace {

int failures = 0;

void Check(const std::string& what, const at::Tensor& got, const at::Tensor& want, double tolerance) {
  const double diff = (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
  const double scale = std::max(1.0, want.abs().max().item<double>());
  const bool ok = got.sizes() == want.sizes() && diff <= tolerance * scale;
  std::printf("%s %-62s max |diff| %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), diff);
  if (!ok) ++failures;
}

// DilatedConv3x3 against at::conv2d with padding = dilation: output, input and weight gradients.
void CheckDilated(int64_t channels, int64_t height, int64_t width, int64_t dilation, bool channels_last, at::ScalarType dtype, double tolerance) {
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x0 = at::randn({2, channels, height, width}).to(dtype).contiguous(format);
  const at::Tensor w0 = at::randn({5, channels, 3, 3}).to(dtype).contiguous(format);
  const at::Tensor grad = at::randn({2, 5, height, width}).to(dtype);
  at::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
  at::Tensor xr = x0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true);
  const at::Tensor y = u2pl::model::DilatedConv3x3(x, w, dilation);
  const at::Tensor yr = at::conv2d(xr, wr, {}, 1, dilation, dilation);
  torch::autograd::backward({y}, {grad});
  torch::autograd::backward({yr}, {grad});
  const std::string what = std::to_string(height) + "x" + std::to_string(width) + " d" + std::to_string(dilation) +
                           (channels_last ? " channels-last" : "") + (dtype == at::kBFloat16 ? " bf16" : "");
  Check("DilatedConv3x3 " + what + ": output", y, yr, tolerance);
  Check("DilatedConv3x3 " + what + ": input gradient", x.grad(), xr.grad(), tolerance);
  Check("DilatedConv3x3 " + what + ": weight gradient", w.grad(), wr.grad(), tolerance);
}

}  // namespace

int main() {
  at::manual_seed(0);
  // Both directions skipped (camvid-small's ASPP at output stride 16), one of them, none.
  for (const int64_t d : {12, 18, 11}) CheckDilated(16, 11, 11, d, false, at::kFloat, 1e-5);
  CheckDilated(16, 11, 11, 12, true, at::kFloat, 1e-5);
  CheckDilated(8, 12, 15, 12, false, at::kFloat, 1e-5);   // rows only
  CheckDilated(8, 15, 12, 12, true, at::kFloat, 1e-5);    // columns only
  CheckDilated(8, 11, 11, 6, false, at::kFloat, 1e-5);    // no tap all padding: plain conv
  CheckDilated(8, 5, 7, 36, false, at::kFloat, 1e-5);
  // bf16: the skipped taps add exact zeros, but the two convolutions may block their sums differently.
  CheckDilated(16, 11, 11, 18, true, at::kBFloat16, 2e-2);
  if (failures) std::printf("%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
