#include "model/state_dict.h"

#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

namespace u2pl::model {
namespace {

std::string Shape(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

std::vector<std::pair<std::string, torch::Tensor>> Pairs(const torch::OrderedDict<std::string, torch::Tensor>& dict) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : dict) out.emplace_back(item.key(), item.value());
  return out;
}

}  // namespace

NamedTensors StateDict(const torch::nn::Module& module) {
  // Module by module, own parameters then own buffers: the order of PyTorch's state_dict().
  NamedTensors out;
  for (const auto& item : module.named_modules("", /*include_self=*/true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (auto& entry : Pairs(item.value()->named_parameters(false))) out.emplace_back(prefix + entry.first, entry.second);
    for (auto& entry : Pairs(item.value()->named_buffers(false))) out.emplace_back(prefix + entry.first, entry.second);
  }
  return out;
}

LoadReport LoadStateDict(torch::nn::Module& module, const NamedTensors& entries, const std::string& prefix) {
  std::unordered_map<std::string, torch::Tensor> file;
  std::vector<std::string> file_order;
  for (const auto& [raw_name, tensor] : entries) {
    std::string name = raw_name.rfind("module.", 0) == 0 ? raw_name.substr(7) : raw_name;
    if (!prefix.empty()) {
      if (name.rfind(prefix, 0) != 0) continue;
      name = name.substr(prefix.size());
    }
    if (file.emplace(name, tensor).second) file_order.push_back(name);
  }
  LoadReport report;
  std::unordered_set<std::string> used;
  c10::AutoGradMode no_grad(false);
  for (auto& [name, target] : StateDict(module)) {
    auto it = file.find(name);
    if (it == file.end()) {
      report.missing.push_back(name);
      continue;
    }
    const torch::Tensor& source = it->second;
    if (source.sizes() != target.sizes())
      throw std::invalid_argument("shape mismatch for '" + name + "': checkpoint has " + Shape(source) + ", model has " +
                                  Shape(target));
    target.copy_(source);
    used.insert(name);
    ++report.loaded;
  }
  for (const auto& name : file_order)
    if (!used.count(name)) report.unexpected.push_back(name);
  return report;
}

void CopyState(torch::nn::Module& dst, const torch::nn::Module& src) {
  c10::AutoGradMode no_grad(false);
  NamedTensors from = StateDict(src);
  NamedTensors to = StateDict(dst);
  TORCH_CHECK(from.size() == to.size(), "cannot copy between models of different architectures (", from.size(), " vs ",
              to.size(), " tensors)");
  for (size_t i = 0; i < to.size(); ++i) {
    TORCH_CHECK(from[i].first == to[i].first && from[i].second.sizes() == to[i].second.sizes(),
                "cannot copy between models of different architectures at '", to[i].first, "'");
    to[i].second.copy_(from[i].second);
  }
}

void EmaUpdate(torch::nn::Module& teacher, const torch::nn::Module& student, double decay) {
  c10::AutoGradMode no_grad(false);
  auto t = teacher.parameters(true);
  auto s = student.parameters(true);
  TORCH_CHECK(t.size() == s.size(), "EMA between models of different architectures");
  for (size_t i = 0; i < t.size(); ++i) t[i].mul_(decay).add_(s[i].detach(), 1.0 - decay);
}

void EmaUpdateBuffers(torch::nn::Module& teacher, const torch::nn::Module& student, double decay) {
  c10::AutoGradMode no_grad(false);
  auto t = teacher.buffers(true);
  auto s = student.buffers(true);
  TORCH_CHECK(t.size() == s.size(), "EMA between models of different architectures");
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i].is_floating_point()) t[i].mul_(decay).add_(s[i], 1.0 - decay);
}

std::vector<torch::Tensor> ParametersWithPrefix(const torch::nn::Module& module, const std::string& prefix, bool with) {
  std::vector<torch::Tensor> out;
  for (const auto& item : module.named_parameters(true))
    if ((item.key().rfind(prefix, 0) == 0) == with) out.push_back(item.value());
  return out;
}

void SetChannelsLast(torch::nn::Module& module, bool channels_last) {
  c10::AutoGradMode no_grad(false);
  module.zero_grad(/*set_to_none=*/true);  // gradients must follow the new layout
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& entry : StateDict(module))
    if (entry.second.dim() == 4) entry.second.set_data(entry.second.contiguous(format));
}

}  // namespace u2pl::model
