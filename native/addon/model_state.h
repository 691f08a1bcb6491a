// What a JS model handle owns; shared between AddonModel and AddonTrainer (whose student and
// teacher are exposed as AddonModel handles). The mutex serialises work on the network.
#pragma once

#include <memory>
#include <mutex>

#include <napi.h>

#include "model/segmentation_model.h"

namespace u2pl::addon {

struct ModelState {
  model::SegmentationModel net{nullptr};
  at::Device device = at::kCPU;
  at::ScalarType autocast = at::ScalarType::Undefined;
  bool channels_last = false;
  std::mutex mutex;
};

// A new AddonModel JS object around an existing state.
Napi::Object WrapModelState(Napi::Env env, std::shared_ptr<ModelState> state);

// The state behind an AddonModel JS object (throws a TypeError naming `what` otherwise).
std::shared_ptr<ModelState> UnwrapModelState(const Napi::Value& value, const char* what);

}  // namespace u2pl::addon
