// augment() and photometric(): the per-sample augmentations on the libuv pool (or their ATen
// composites on the compute thread, for tests).
#include <ATen/ATen.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "addon/js_options.h"
#include "addon/js_tensor.h"
#include "addon/pool_task.h"
#include "data/augment.h"
#include "data/augment_composite.h"
#include "data/photometric.h"

namespace u2pl::addon {
namespace {

// Reads `key` (3 numbers) into out, if present.
void ReadTriple(Napi::Env env, const Napi::Object& o, const char* key, float* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return;
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, std::string("option '") + key + "' must be 3 numbers");
  for (uint32_t c = 0; c < 3; ++c) out[c] = v.As<Napi::Array>().Get(c).ToNumber().FloatValue();
}

Napi::Value AugmentJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(info, 0, "augment(options)");
  data::AugmentParams p;
  p.height = OptInt(o, "height", 0);
  p.width = OptInt(o, "width", 0);
  p.resized_height = OptInt(o, "resizedHeight", p.height);
  p.resized_width = OptInt(o, "resizedWidth", p.width);
  p.scaled_height = OptInt(o, "scaledHeight", p.resized_height);
  p.scaled_width = OptInt(o, "scaledWidth", p.resized_width);
  p.blur = OptBool(o, "blur", false);
  p.flip = OptBool(o, "flip", false);
  p.crop_top = OptInt(o, "cropTop", 0);
  p.crop_left = OptInt(o, "cropLeft", 0);
  p.crop_height = OptInt(o, "cropHeight", p.scaled_height);
  p.crop_width = OptInt(o, "cropWidth", p.scaled_width);
  const int64_t pad = OptInt(o, "labelPad", 0);
  if (pad < 0 || pad > 255) throw Napi::RangeError::New(env, "option 'labelPad' must be in [0, 255]");
  p.label_pad = static_cast<uint8_t>(pad);
  ReadTriple(env, o, "mean", p.mean);
  ReadTriple(env, o, "std", p.std);
  GuardJs(env, [&] { data::ValidateAugmentParams(p); });
  Napi::Value imageValue = o.Get("image"), labelValue = o.Get("label");
  if (!imageValue.IsTypedArray() || imageValue.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      imageValue.As<Napi::Uint8Array>().ElementLength() != static_cast<size_t>(p.height * p.width * 3))
    throw Napi::TypeError::New(env, "option 'image' must be a Uint8Array of height x width x 3 RGB values");
  const bool hasLabel = !labelValue.IsUndefined() && !labelValue.IsNull();
  if (hasLabel && (!labelValue.IsTypedArray() || labelValue.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
                   labelValue.As<Napi::Uint8Array>().ElementLength() != static_cast<size_t>(p.height * p.width)))
    throw Napi::TypeError::New(env, "option 'label' must be a Uint8Array of height x width class indices");
  const uint8_t* image = imageValue.As<Napi::Uint8Array>().Data();
  const uint8_t* label = hasLabel ? labelValue.As<Napi::Uint8Array>().Data() : nullptr;
  const bool composite = OptString(o, "impl", "kernel") == "composite";

  if (composite) {
    at::Tensor img = at::from_blob(const_cast<uint8_t*>(image), {p.height, p.width, 3}, at::kByte);
    at::Tensor lab = label ? at::from_blob(const_cast<uint8_t*>(label), {p.height, p.width}, at::kByte) : at::Tensor();
    return AsyncTask::Run(env, [img, lab, p]() -> ResultBuilder {
      auto [x, y] = data::AugmentComposite(img, lab, p);
      return [x, y](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("image", TensorToJs(env, x).Get("data"));
        if (y.defined()) out.Set("label", TensorToJs(env, y).Get("data"));
        return out;
      };
    }, {o});
  }
  // Outputs are allocated here and filled on the pool thread; JS sees them only once resolved.
  Napi::Float32Array outImage = Napi::Float32Array::New(env, 3 * p.crop_height * p.crop_width);
  Napi::Uint8Array outLabel = hasLabel ? Napi::Uint8Array::New(env, p.crop_height * p.crop_width) : Napi::Uint8Array();
  float* imageOut = outImage.Data();
  uint8_t* labelOut = hasLabel ? outLabel.Data() : nullptr;
  std::vector<Napi::Value> keep = {o, outImage};
  if (hasLabel) keep.push_back(outLabel);
  auto outImageRef = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(outImage));
  auto outLabelRef = std::make_shared<Napi::Reference<Napi::Uint8Array>>(hasLabel ? Napi::Persistent(outLabel) : Napi::Reference<Napi::Uint8Array>());
  return PoolTask::Run(env, [=]() -> ResultBuilder {
    data::Augment(image, label, p, imageOut, labelOut);
    return [outImageRef, outLabelRef, hasLabel](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("image", outImageRef->Value());
      if (hasLabel) out.Set("label", outLabelRef->Value());
      return out;
    };
  }, keep);
}

Napi::Value PhotometricJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(info, 0, "photometric(options)");
  data::PhotometricParams p;
  p.height = OptInt(o, "height", 0);
  p.width = OptInt(o, "width", 0);
  ReadTriple(env, o, "mean", p.mean);
  ReadTriple(env, o, "std", p.std);
  p.jitter = OptBool(o, "jitter", false);
  p.brightness = static_cast<float>(OptDouble(o, "brightness", 1));
  p.contrast = static_cast<float>(OptDouble(o, "contrast", 1));
  p.saturation = static_cast<float>(OptDouble(o, "saturation", 1));
  float order[3] = {0, 1, 2};
  ReadTriple(env, o, "order", order);
  for (int i = 0; i < 3; ++i) p.order[i] = static_cast<int>(order[i]);
  p.grayscale = OptBool(o, "grayscale", false);
  p.blur_sigma = static_cast<float>(OptDouble(o, "blurSigma", 0));
  GuardJs(env, [&] { data::ValidatePhotometricParams(p); });
  Napi::Value imageValue = o.Get("image");
  if (!imageValue.IsTypedArray() || imageValue.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      imageValue.As<Napi::Float32Array>().ElementLength() != static_cast<size_t>(3 * p.height * p.width))
    throw Napi::TypeError::New(env, "option 'image' must be a Float32Array of 3 x height x width normalised values");
  const float* image = imageValue.As<Napi::Float32Array>().Data();
  if (OptString(o, "impl", "kernel") == "composite") {
    at::Tensor img = at::from_blob(const_cast<float*>(image), {3, p.height, p.width}, at::kFloat);
    return AsyncTask::Run(env, [img, p]() -> ResultBuilder {
      at::Tensor x = data::PhotometricComposite(img, p);
      return [x](Napi::Env env) -> Napi::Value { return TensorToJs(env, x).Get("data"); };
    }, {o});
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, 3 * p.height * p.width);
  float* outData = out.Data();
  auto outRef = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(out));
  return PoolTask::Run(env, [=]() -> ResultBuilder {
    data::Photometric(image, p, outData);
    return [outRef](Napi::Env) -> Napi::Value { return outRef->Value(); };
  }, {o, out});
}

}  // namespace

void RegisterData(Napi::Env env, Napi::Object exports) {
  exports.Set("augment", Napi::Function::New(env, AugmentJs, "augment"));
  exports.Set("photometric", Napi::Function::New(env, PhotometricJs, "photometric"));
}

}  // namespace u2pl::addon
