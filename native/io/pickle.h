// A pickle (protocol 2, plus the protocol 4 opcodes Python may emit) reader and writer for the
// data.pkl of PyTorch's zip checkpoints. LibTorch's own unpickler cannot read state dicts
// (it turns collections.OrderedDict into None), hence this one.
#pragma once

#include <functional>
#include <string>

#include "io/value.h"

namespace u2pl::io {

// Resolves a persistent id ('storage', type, key, location, numel) to a 1-D tensor holding the
// whole storage; views are then taken with _rebuild_tensor_v2's offset, size and stride.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

ValuePtr Unpickle(const std::string& bytes, const StorageLoader& load_storage, const std::string& source);

// Storage records the writer asks the caller to store as data/<key>.
struct StorageRecord {
  std::string key;
  at::Tensor tensor;  // contiguous, owns exactly its bytes
};

std::string Pickle(const ValuePtr& value, std::vector<StorageRecord>& storages);

}  // namespace u2pl::io
