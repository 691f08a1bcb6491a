// Models in checkpoint files: which state dict of a file to load, and how ours are written.
#pragma once

#include <string>

#include <torch/nn/module.h>

#include "io/value.h"
#include "model/state_dict.h"

namespace u2pl::model {

// The state dict inside a checkpoint. With key empty: "teacher_state", "model_state",
// "state_dict" or "model" (the first present), else the root itself. *used_key says which.
NamedTensors StateDictFromCheckpoint(const io::ValuePtr& root, const std::string& key, const std::string& source,
                                     std::string* used_key);

// A module's state dict as an OrderedDict value (what Python's state_dict() gives).
io::ValuePtr StateDictValue(const torch::nn::Module& module);

}  // namespace u2pl::model
