// The communicator behind an AddonProcessGroup JS object (for new AddonTrainer({ processGroup })).
#pragma once

#include <memory>

#include <napi.h>

#include "train/distributed.h"

namespace u2pl::addon {

// Throws a TypeError unless `value` came from joinProcessGroup().
std::shared_ptr<train::Communicator> UnwrapProcessGroup(const Napi::Value& value);

}  // namespace u2pl::addon
