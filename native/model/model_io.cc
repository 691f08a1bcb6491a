#include "model/model_io.h"

#include <stdexcept>

namespace u2pl::model {

NamedTensors StateDictFromCheckpoint(const io::ValuePtr& root, const std::string& key, const std::string& source,
                                     std::string* used_key) {
  if (!root->is(io::Value::Kind::Dict)) throw std::runtime_error(source + ": holds a " + root->kind_name() + ", not a dict");
  io::ValuePtr dict;
  std::string chosen = key;
  if (!key.empty()) {
    dict = root->get(key);
    if (!dict) {
      std::string keys;
      for (const auto& entry : root->entries) keys += (keys.empty() ? "" : ", ") + entry.first->text;
      throw std::runtime_error(source + ": no key '" + key + "' (keys: " + keys + ")");
    }
  } else {
    for (const char* candidate : {"teacher_state", "model_state", "state_dict", "model"}) {
      if ((dict = root->get(candidate)) && dict->is(io::Value::Kind::Dict)) {
        chosen = candidate;
        break;
      }
      dict = nullptr;
    }
    if (!dict) dict = root;
  }
  if (!dict->is(io::Value::Kind::Dict))
    throw std::runtime_error(source + ": '" + chosen + "' holds a " + dict->kind_name() + ", not a state dict");
  NamedTensors out;
  for (const auto& [k, v] : dict->entries)
    if (k->is(io::Value::Kind::String) && v->is(io::Value::Kind::Tensor)) out.emplace_back(k->text, v->tensor);
  if (out.empty()) throw std::runtime_error(source + ": '" + (chosen.empty() ? "<root>" : chosen) + "' holds no tensors");
  if (used_key) *used_key = chosen;
  return out;
}

io::ValuePtr StateDictValue(const torch::nn::Module& module) {
  auto dict = io::Value::Dict(/*ordered=*/true);
  for (const auto& [name, tensor] : StateDict(module)) dict->entries.emplace_back(io::Value::String(name), io::Value::Tensor(tensor));
  return dict;
}

}  // namespace u2pl::model
