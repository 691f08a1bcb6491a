// State dicts of torch::nn modules, with the loading rules of the reference: a leading "module."
// is stripped, missing and unexpected names are reported, a shape mismatch is an error.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

namespace u2pl::model {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  size_t loaded = 0;
};

// Parameters then buffers, in registration order, with PyTorch's dotted names.
NamedTensors StateDict(const torch::nn::Module& module);

// Copies matching entries into the module. `prefix` selects and strips a sub-tree of the file
// (e.g. "encoder." to load an ImageNet backbone). Throws on a shape mismatch, naming the key.
LoadReport LoadStateDict(torch::nn::Module& module, const NamedTensors& entries, const std::string& prefix = "");

// dst <- src for every parameter and buffer (same architecture).
void CopyState(torch::nn::Module& dst, const torch::nn::Module& src);

// Teacher EMA over parameters only (BN buffers stay the teacher's own, §7):
// teacher <- decay * teacher + (1 - decay) * student.
void EmaUpdate(torch::nn::Module& teacher, const torch::nn::Module& student, double decay);
// The same for the floating-point buffers (BN running mean and variance), not the batch counters.
void EmaUpdateBuffers(torch::nn::Module& teacher, const torch::nn::Module& student, double decay);

// Parameters whose names start with prefix (e.g. "encoder." for the backbone group) or not.
std::vector<torch::Tensor> ParametersWithPrefix(const torch::nn::Module& module, const std::string& prefix, bool with);

// Converts 4-D parameters and buffers to channels-last (or back to contiguous).
void SetChannelsLast(torch::nn::Module& module, bool channels_last);

}  // namespace u2pl::model
