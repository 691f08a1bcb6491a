// The AEL variant's components (u2pl-ael-method.md A3-A6) on their own, for tests and inspection:
// copy-paste (kernel and reference), the component and random boxes, the bank's class presence,
// the consistency loss with its gradient, the class confidence, the pseudo-labels with an entropy
// tail ignored, and the class probabilities the plans draw from. Training calls them inside the step.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/js_options.h"
#include "addon/js_tensor.h"
#include "ael/adaptive_cutmix.h"
#include "ael/ael_state.h"
#include "ael/consistency.h"
#include "ael/copy_paste.h"

namespace u2pl::addon {
namespace {

std::vector<int64_t> Ints(const Napi::Object& o, const char* key) {
  std::vector<int64_t> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be an array of integers");
  for (uint32_t i = 0; i < v.As<Napi::Array>().Length(); ++i) out.push_back(v.As<Napi::Array>().Get(i).ToNumber().Int64Value());
  return out;
}

Napi::Value BoxToJs(Napi::Env env, const ael::Box& b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("top", static_cast<double>(b.top));
  o.Set("left", static_cast<double>(b.left));
  o.Set("height", static_cast<double>(b.height));
  o.Set("width", static_cast<double>(b.width));
  o.Set("fromComponent", b.from_component);
  return o;
}

Napi::Value CopyPasteJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "copyPaste(options)");
  at::Tensor images = TensorFromJs(o.Get("images"), "images").to(at::kFloat).clone();
  at::Tensor labels = TensorFromJs(o.Get("labels"), "labels").clone();
  at::Tensor partner_images = TensorFromJs(o.Get("partnerImages"), "partnerImages");
  at::Tensor partner_labels = TensorFromJs(o.Get("partnerLabels"), "partnerLabels");
  std::vector<bool> has_partner;
  for (int64_t f : Ints(o, "hasPartner")) has_partner.push_back(f != 0);
  const std::vector<int64_t> classes = Ints(o, "classes");
  const bool reference = OptString(o, "impl", "kernel") == "composite";
  return AsyncTask::Run(info.Env(), [=]() mutable -> ResultBuilder {
    const int64_t pasted = reference ? ael::CopyPasteReference(images, labels, partner_images, partner_labels, has_partner, classes)
                                     : ael::CopyPaste(images, labels, partner_images, partner_labels, has_partner, classes);
    return [=](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("images", TensorToJs(env, images));
      out.Set("labels", TensorToJs(env, labels));
      out.Set("pasted", static_cast<double>(pasted));
      return out;
    };
  }, {o});
}

Napi::Value ComponentBoxJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "componentBox(options)");
  at::Tensor prediction = TensorFromJs(o.Get("prediction"), "prediction");
  const int64_t cls = OptInt(o, "cls", 0);
  const double min_pixels = OptDouble(o, "minPixels", 0);
  const uint64_t seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    std::optional<ael::Box> box = ael::ComponentBox(prediction, cls, min_pixels, at::make_generator<at::CPUGeneratorImpl>(seed));
    return [box](Napi::Env env) -> Napi::Value { return box ? BoxToJs(env, *box) : env.Null(); };
  }, {o});
}

Napi::Value RandomBoxJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "randomBox(options)");
  const int64_t h = OptInt(o, "height", 0), w = OptInt(o, "width", 0);
  const uint64_t seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    ael::Box box = ael::RandomBox(h, w, at::make_generator<at::CPUGeneratorImpl>(seed));
    return [box](Napi::Env env) -> Napi::Value { return BoxToJs(env, box); };
  });
}

Napi::Value ClassPresenceJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "classPresence(options)");
  at::Tensor prediction = TensorFromJs(o.Get("prediction"), "prediction");
  const int64_t classes = OptInt(o, "classes", 0);
  const double min_pixels = OptDouble(o, "minPixels", 0);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    const std::vector<bool> present = ael::ClassPresence(prediction, classes, min_pixels);
    return [present](Napi::Env env) -> Napi::Value {
      Napi::Array a = Napi::Array::New(env, present.size());
      for (size_t i = 0; i < present.size(); ++i) a.Set(static_cast<uint32_t>(i), static_cast<bool>(present[i]));
      return a;
    };
  }, {o});
}

Napi::Value ConsistencyLossJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "consistencyLoss(options)");
  at::Tensor logits = TensorFromJs(o.Get("logits"), "logits");
  at::Tensor confidence = TensorFromJs(o.Get("confidence"), "confidence");
  at::Tensor target = TensorFromJs(o.Get("target"), "target");
  at::Tensor kappa = TensorFromJs(o.Get("kappa"), "kappa");
  ael::ConsistencyOptions c;
  c.gamma = OptDouble(o, "gamma", 2);
  c.gamma2 = OptDouble(o, "gamma2", 1);
  c.sample = OptBool(o, "sample", true);
  c.normalise_over_all = OptBool(o, "normaliseOverAll", true);
  c.shared_sampling_map = OptBool(o, "sharedSamplingMap", true);
  c.ignore_index = OptInt(o, "ignoreIndex", 255);
  const uint64_t seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    c10::AutoGradMode grad(true);
    at::Tensor z = logits.to(at::kFloat).clone().requires_grad_(true);
    at::Tensor value = ael::ConsistencyLoss(z, confidence.to(at::kFloat), target.to(at::kLong), kappa.to(at::kFloat), c,
                                            at::make_generator<at::CPUGeneratorImpl>(seed));
    value.backward();
    const double v = value.item<double>();
    return [v, z](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("loss", v);
      out.Set("gradLogits", TensorToJs(env, z.grad()));
      return out;
    };
  }, {o});
}

Napi::Value ClassConfidenceJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "classConfidence(options)");
  at::Tensor prob = TensorFromJs(o.Get("prob"), "prob");
  at::Tensor labels = TensorFromJs(o.Get("labels"), "labels");
  const int64_t ignore = OptInt(o, "ignoreIndex", 255);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    ael::ClassConfidence m = ael::MeasureClassConfidence(prob.to(at::kFloat), labels, ignore);
    return [m](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("mean", TensorToJs(env, m.mean));
      out.Set("present", TensorToJs(env, m.present.to(at::kByte)));
      return out;
    };
  }, {o});
}

Napi::Value PseudoLabelsJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "pseudoLabels(options)");
  at::Tensor logits = TensorFromJs(o.Get("logits"), "logits");
  const double percent = OptDouble(o, "percent", 20);
  const bool ignore_confident = OptBool(o, "ignoreConfident", true);
  const int64_t ignore = OptInt(o, "ignoreIndex", 255);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    ael::ConsistencyTarget t = ael::PseudoLabelsWithEntropyIgnore(logits, percent, ignore_confident, ignore);
    return [t](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("target", TensorToJs(env, t.target));
      out.Set("confidence", TensorToJs(env, t.confidence));
      out.Set("entropy", TensorToJs(env, t.entropy));
      return out;
    };
  }, {o});
}

Napi::Value ClassProbabilitiesJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "classProbabilities(options)");
  at::Tensor kappa = TensorFromJs(o.Get("kappa"), "kappa");
  const std::vector<int64_t> paste = Ints(o, "pasteClasses");
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    at::Tensor p = paste.empty() ? at::empty({0}, at::kDouble) : ael::PasteClassProbabilities(kappa, paste);
    at::Tensor m = ael::MixClassProbabilities(kappa);
    return [p, m](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("paste", TensorToJs(env, p));
      out.Set("mix", TensorToJs(env, m));
      return out;
    };
  }, {o});
}

}  // namespace

void RegisterAel(Napi::Env env, Napi::Object exports) {
  Napi::Object ael = Napi::Object::New(env);
  ael.Set("copyPaste", Napi::Function::New(env, CopyPasteJs, "copyPaste"));
  ael.Set("componentBox", Napi::Function::New(env, ComponentBoxJs, "componentBox"));
  ael.Set("randomBox", Napi::Function::New(env, RandomBoxJs, "randomBox"));
  ael.Set("classPresence", Napi::Function::New(env, ClassPresenceJs, "classPresence"));
  ael.Set("consistencyLoss", Napi::Function::New(env, ConsistencyLossJs, "consistencyLoss"));
  ael.Set("classConfidence", Napi::Function::New(env, ClassConfidenceJs, "classConfidence"));
  ael.Set("pseudoLabels", Napi::Function::New(env, PseudoLabelsJs, "pseudoLabels"));
  ael.Set("classProbabilities", Napi::Function::New(env, ClassProbabilitiesJs, "classProbabilities"));
  exports.Set("ael", ael);
}

}  // namespace u2pl::addon
