// Option objects shared by several Addon* classes.
#pragma once

#include <napi.h>

#include "loss/contrastive.h"
#include "model/segmentation_model.h"

namespace u2pl::addon {

model::ModelOptions ModelOptionsFromJs(const Napi::Object& o);          // model_js.cc
loss::ContrastiveOptions ContrastiveOptionsFromJs(const Napi::Object& o);  // loss_js.cc

}  // namespace u2pl::addon
