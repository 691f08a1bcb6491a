// PyTorch's zip checkpoint format (torch.save since 1.6): read what Python writes, write what
// Python reads. Writes are atomic: a temporary file in the same folder, then rename.
#pragma once

#include <string>

#include "io/value.h"

namespace u2pl::io {

ValuePtr ReadCheckpoint(const std::string& path);
void WriteCheckpoint(const std::string& path, const ValuePtr& root);

}  // namespace u2pl::io
