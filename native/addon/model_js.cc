// AddonModel: a U2PL segmentation network owned by native code; JS holds a handle and calls
// one method per unit of work (forward, save, load, EMA), each on a worker thread when long.
#include <mutex>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "addon/js_options.h"
#include "addon/js_tensor.h"
#include "addon/model_state.h"
#include "addon/option_parsers.h"
#include "io/checkpoint.h"
#include "model/inference.h"
#include "model/model_io.h"
#include "model/segmentation_model.h"
#include "model/state_dict.h"
#include "util/autocast.h"

namespace u2pl::addon {
namespace {

template <size_t N, typename T>
std::array<T, N> GetArray(const Napi::Object& o, const char* key, std::array<T, N> fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsArray() || v.As<Napi::Array>().Length() != N)
    throw Napi::TypeError::New(o.Env(), std::string("model option ") + key + " must be an array of " + std::to_string(N));
  std::array<T, N> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < N; ++i) {
    if constexpr (std::is_same_v<T, bool>) out[i] = a.Get(i).ToBoolean().Value();
    else out[i] = a.Get(i).ToNumber().Int64Value();
  }
  return out;
}

}  // namespace

model::ModelOptions ModelOptionsFromJs(const Napi::Object& o) {
  model::ModelOptions m;
  m.encoder.depth = static_cast<int>(OptInt(o, "depth", 101, "model option"));
  m.encoder.deep_stem = OptBool(o, "deepStem", true);
  m.encoder.replace_stride_with_dilation = GetArray<3, bool>(o, "replaceStrideWithDilation", {false, true, true});
  m.encoder.multi_grid = OptBool(o, "multiGrid", false);
  m.encoder.zero_init_residual = OptBool(o, "zeroInitResidual", false);
  m.num_classes = OptInt(o, "numClasses", 21);
  m.inner_planes = OptInt(o, "innerPlanes", 256);
  m.head_planes = OptInt(o, "headPlanes", 256);
  m.dilations = GetArray<3, int64_t>(o, "dilations", {12, 24, 36});
  m.rep_head = OptBool(o, "repHead", true);
  m.aux = OptBool(o, "aux", false);
  m.aux_planes = OptInt(o, "auxPlanes", 0);
  if (o.Has("dropout")) m.dropout = o.Get("dropout").ToNumber().DoubleValue();
  if (m.num_classes < 1) throw Napi::RangeError::New(o.Env(), "model option numClasses must be >= 1");
  return m;
}

namespace {

Napi::Array Strings(Napi::Env env, const std::vector<std::string>& values) {
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), values[i]);
  return out;
}

}  // namespace

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonModel",
                       {InstanceMethod("forward", &AddonModel::Forward),
                        InstanceMethod("lossAndGradients", &AddonModel::LossAndGradients),
                        InstanceMethod("parameterCount", &AddonModel::ParameterCount),
                        InstanceMethod("parameterGroups", &AddonModel::ParameterGroups),
                        InstanceMethod("stateDict", &AddonModel::StateDictJs),
                        InstanceMethod("save", &AddonModel::Save),
                        InstanceMethod("load", &AddonModel::Load),
                        InstanceMethod("copyFrom", &AddonModel::CopyFrom),
                        InstanceMethod("emaFrom", &AddonModel::EmaFrom),
                        InstanceMethod("setChannelsLast", &AddonModel::SetChannelsLast),
                        InstanceMethod("channelsLast", &AddonModel::ChannelsLast),
                        InstanceMethod("setAutocast", &AddonModel::SetAutocast),
                        InstanceMethod("seed", &AddonModel::Seed),
                        InstanceMethod("predict", &AddonModel::Predict),
                        InstanceMethod("evaluateBatch", &AddonModel::EvaluateBatchJs),
                        InstanceMethod("numClasses", &AddonModel::NumClasses)});
  }

  explicit AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
    Napi::Env env = info.Env();
    if (info.Length() == 1 && info[0].IsExternal()) {  // WrapModelState
      state_ = *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
      return;
    }
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "new AddonModel(options) expects an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    model::ModelOptions options = ModelOptionsFromJs(o);
    std::string device = o.Has("device") ? o.Get("device").ToString().Utf8Value() : "cpu";
    state_ = std::make_shared<ModelState>();
    const bool seeded = o.Has("seed");
    const uint64_t seed = seeded ? static_cast<uint64_t>(OptInt(o, "seed", 0)) : 0;
    GuardJs(env, [&] {
      RunOnComputeThread([&] {
        if (seeded) at::manual_seed(seed);
        state_->device = at::Device(device);
        state_->net = model::SegmentationModel(options);
        state_->net->to(state_->device);
      });
    });
  }

  std::shared_ptr<ModelState> state() const { return state_; }

 private:
  // The network, or a JS error once its trainer was disposed (the memory is gone).
  void Alive() const {
    if (!state_->net) throw Napi::Error::New(Env(), "this model's memory was released (its AddonTrainer was disposed)");
  }

  at::Tensor Input(const Napi::Value& value, const char* what) const {
    return TensorFromJs(value, what);
  }

  // forward(images, { train }) -> Promise<{ pred, rep?, aux? }>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Alive();
    at::Tensor images = Input(info[0], "images");
    bool train = info.Length() > 1 && info[1].IsObject() && info[1].As<Napi::Object>().Get("train").ToBoolean().Value();
    auto s = state_;
    return AsyncTask::Run(
        Env(),
        [s, images, train]() -> ResultBuilder {
          std::lock_guard<std::mutex> lock(s->mutex);
          s->net->train(train);
          util::AutocastScope autocast(s->device.type(), s->autocast);
          at::Tensor x = images.to(s->device, at::kFloat);
          if (s->channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
          model::ModelOutput out = s->net->forward(x);
          auto pred = out.pred.to(at::kFloat), rep = out.rep.defined() ? out.rep.to(at::kFloat) : out.rep,
               aux = out.aux.defined() ? out.aux.to(at::kFloat) : out.aux;
          return [pred, rep, aux](Napi::Env env) -> Napi::Value {
            Napi::Object result = Napi::Object::New(env);
            result.Set("pred", TensorToJs(env, pred));
            if (rep.defined()) result.Set("rep", TensorToJs(env, rep));
            if (aux.defined()) result.Set("aux", TensorToJs(env, aux));
            return result;
          };
        },
        {info[0]});
  }

  // lossAndGradients(images, labels, ignoreIndex) -> Promise<{ loss }>: train-mode forward,
  // cross-entropy of pred upsampled (align-corners) to the label size, backward into .grad.
  Napi::Value LossAndGradients(const Napi::CallbackInfo& info) {
    Alive();
    at::Tensor images = Input(info[0], "images");
    at::Tensor labels = Input(info[1], "labels");
    int64_t ignore = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 255;
    auto s = state_;
    return AsyncTask::Run(
        Env(),
        [s, images, labels, ignore]() -> ResultBuilder {
          std::lock_guard<std::mutex> lock(s->mutex);
          c10::AutoGradMode grad(true);
          s->net->train(true);
          s->net->zero_grad(/*set_to_none=*/true);
          at::Tensor loss;
          {
            util::AutocastScope autocast(s->device.type(), s->autocast);
            at::Tensor x = images.to(s->device, at::kFloat);
            if (s->channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
            at::Tensor y = labels.to(s->device, at::kLong);
            at::Tensor pred = s->net->forward(x).pred;
            pred = at::upsample_bilinear2d(pred.to(at::kFloat), {y.size(1), y.size(2)}, true);
            loss = at::cross_entropy_loss(pred, y, {}, at::Reduction::Mean, ignore);
          }
          loss.backward();
          double value = loss.item<double>();
          return [value](Napi::Env env) -> Napi::Value {
            Napi::Object result = Napi::Object::New(env);
            result.Set("loss", value);
            return result;
          };
        },
        {info[0], info[1]});
  }

  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    Alive();
    std::lock_guard<std::mutex> lock(state_->mutex);
    double total = 0;
    for (const auto& p : state_->net->parameters()) total += static_cast<double>(p.numel());
    return Napi::Number::New(Env(), total);
  }

  // { backbone: names, head: names }: the two learning-rate groups of §5.1.
  Napi::Value ParameterGroups(const Napi::CallbackInfo& info) {
    Alive();
    std::lock_guard<std::mutex> lock(state_->mutex);
    std::vector<std::string> backbone, head;
    for (const auto& p : state_->net->named_parameters()) (p.key().rfind("encoder.", 0) == 0 ? backbone : head).push_back(p.key());
    Napi::Object out = Napi::Object::New(Env());
    out.Set("backbone", Strings(Env(), backbone));
    out.Set("head", Strings(Env(), head));
    return out;
  }

  // A copy of every parameter and buffer, by state-dict name.
  Napi::Value StateDictJs(const Napi::CallbackInfo& info) {
    Alive();
    std::lock_guard<std::mutex> lock(state_->mutex);
    Napi::Object out = Napi::Object::New(Env());
    for (const auto& [name, tensor] : model::StateDict(*state_->net)) out.Set(name, TensorToJs(Env(), tensor.detach().clone()));
    return out;
  }

  // save(path, key = "model_state"): a PyTorch zip checkpoint { [key]: state_dict }.
  Napi::Value Save(const Napi::CallbackInfo& info) {
    Alive();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(Env(), "save(path) expects a file path");
    std::string path = info[0].As<Napi::String>();
    std::string key = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "model_state";
    auto s = state_;
    return AsyncTask::Run(Env(), [s, path, key]() -> ResultBuilder {
      std::lock_guard<std::mutex> lock(s->mutex);
      auto root = io::Value::Dict();
      root->set(key, model::StateDictValue(*s->net));
      io::WriteCheckpoint(path, root);
      return nullptr;
    });
  }

  // load(path, { key?, into? = "model" | "encoder" }) -> Promise<{ key, loaded, missing, unexpected }>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Alive();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(Env(), "load(path) expects a file path");
    std::string path = info[0].As<Napi::String>();
    std::string key, into = "model";
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      if (o.Get("key").IsString()) key = o.Get("key").As<Napi::String>();
      if (o.Get("into").IsString()) into = o.Get("into").As<Napi::String>();
    }
    if (into != "model" && into != "encoder")
      throw Napi::TypeError::New(Env(), "load option 'into' must be 'model' or 'encoder', got '" + into + "'");
    auto s = state_;
    return AsyncTask::Run(Env(), [s, path, key, into]() -> ResultBuilder {
      io::ValuePtr root = io::ReadCheckpoint(path);
      std::string used;
      model::NamedTensors entries = model::StateDictFromCheckpoint(root, key, path, &used);
      std::lock_guard<std::mutex> lock(s->mutex);
      torch::nn::Module& target = into == "encoder" ? *s->net->named_children()["encoder"] : *s->net;
      model::LoadReport report;
      try {
        report = model::LoadStateDict(target, entries);
      } catch (const std::exception& e) {
        throw std::runtime_error(path + ": " + e.what());
      }
      if (s->channels_last) model::SetChannelsLast(*s->net, true);
      return [report, used](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("key", used.empty() ? env.Null() : Napi::String::New(env, used));
        out.Set("loaded", static_cast<double>(report.loaded));
        out.Set("missing", Strings(env, report.missing));
        out.Set("unexpected", Strings(env, report.unexpected));
        return out;
      };
    });
  }

  // copyFrom(other): parameters and buffers.
  Napi::Value CopyFrom(const Napi::CallbackInfo& info) {
    Alive();
    auto src = UnwrapModelState(info[0], "copyFrom(other): other");
    auto dst = state_;
    if (src == dst) return Env().Undefined();
    GuardJs(Env(), [&] {
      RunOnComputeThread([&] {
        std::scoped_lock lock(dst->mutex, src->mutex);
        model::CopyState(*dst->net, *src->net);
      });
    });
    return Env().Undefined();
  }

  // emaFrom(student, decay): this <- decay * this + (1 - decay) * student, parameters only.
  Napi::Value EmaFrom(const Napi::CallbackInfo& info) {
    Alive();
    auto src = UnwrapModelState(info[0], "emaFrom(student, decay): student");
    if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(Env(), "emaFrom(student, decay) expects a decay");
    double decay = info[1].As<Napi::Number>().DoubleValue();
    if (!(decay >= 0 && decay <= 1)) throw Napi::RangeError::New(Env(), "EMA decay must be in [0, 1], got " + std::to_string(decay));
    auto dst = state_;
    GuardJs(Env(), [&] {
      RunOnComputeThread([&] {
        std::scoped_lock lock(dst->mutex, src->mutex);
        model::EmaUpdate(*dst->net, *src->net, decay);
      });
    });
    return Env().Undefined();
  }

  Napi::Value SetChannelsLast(const Napi::CallbackInfo& info) {
    Alive();
    bool on = info.Length() > 0 && info[0].ToBoolean().Value();
    auto s = state_;
    GuardJs(Env(), [&] {
      RunOnComputeThread([&] {
        std::lock_guard<std::mutex> lock(s->mutex);
        model::SetChannelsLast(*s->net, on);
        s->channels_last = on;
      });
    });
    return Env().Undefined();
  }

  Napi::Value ChannelsLast(const Napi::CallbackInfo&) {
    Alive();
    std::lock_guard<std::mutex> lock(state_->mutex);
    return Napi::Boolean::New(Env(), state_->channels_last);
  }

  // setAutocast(null | "bfloat16" | "float16")
  Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
    Alive();
    at::ScalarType dtype = at::ScalarType::Undefined;
    if (info.Length() > 0 && info[0].IsString()) {
      std::string name = info[0].As<Napi::String>();
      if (name == "bfloat16") dtype = at::kBFloat16;
      else if (name == "float16") dtype = at::kHalf;
      else throw Napi::TypeError::New(Env(), "setAutocast expects null, 'bfloat16' or 'float16', got '" + name + "'");
      if (dtype == at::kHalf && state_->device.is_cpu())
        throw Napi::TypeError::New(Env(), "float16 autocast needs a CUDA device; use 'bfloat16' on the CPU");
    }
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->autocast = dtype;
    return Env().Undefined();
  }

  Napi::Value Seed(const Napi::CallbackInfo& info) {
    at::manual_seed(static_cast<uint64_t>(info[0].ToNumber().Int64Value()));
    return Env().Undefined();
  }

  static model::InferenceOptions InferenceFromJs(const Napi::Value& value, const ModelState& s) {
    model::InferenceOptions o;
    o.autocast = s.autocast;
    o.channels_last = s.channels_last;
    if (!value.IsObject()) return o;
    Napi::Object obj = value.As<Napi::Object>();
    o.sliding = OptString(obj, "mode", "whole") == "slide";
    o.flip = OptBool(obj, "flip", false);
    // crop: a number (square window) or [height, width].
    Napi::Value crop = obj.Get("crop");
    if (crop.IsArray() && crop.As<Napi::Array>().Length() == 2) {
      o.crop_h = crop.As<Napi::Array>().Get(0u).ToNumber().Int64Value();
      o.crop_w = crop.As<Napi::Array>().Get(1u).ToNumber().Int64Value();
    } else if (!crop.IsUndefined()) {
      if (!crop.IsNumber()) throw Napi::TypeError::New(obj.Env(), "option 'crop' must be a number or [height, width]");
      o.crop_h = o.crop_w = crop.As<Napi::Number>().Int64Value();
    }
    o.stride_rate = OptDouble(obj, "strideRate", o.stride_rate);
    o.base_size = OptInt(obj, "baseSize", 0);
    Napi::Value scales = obj.Get("scales");
    if (scales.IsArray()) {
      o.scales.clear();
      for (uint32_t i = 0; i < scales.As<Napi::Array>().Length(); ++i) o.scales.push_back(scales.As<Napi::Array>().Get(i).ToNumber().DoubleValue());
    }
    try {
      model::CheckInferenceOptions(o);
    } catch (const c10::Error& e) {
      throw Napi::RangeError::New(obj.Env(), e.what_without_backtrace());
    }
    return o;
  }

  // predict(image 1x3xHxW, { mode, scales, flip, crop, strideRate, baseSize }) -> { prediction: HxW uint8, confidence: HxW float }
  Napi::Value Predict(const Napi::CallbackInfo& info) {
    Alive();
    at::Tensor image = Input(info[0], "image");
    auto s = state_;
    model::InferenceOptions o = InferenceFromJs(info.Length() > 1 ? info[1] : Env().Undefined(), *s);
    return AsyncTask::Run(Env(), [s, image, o]() -> ResultBuilder {
      std::lock_guard<std::mutex> lock(s->mutex);
      at::Tensor logits = model::PredictLogits(s->net, image.to(s->device, at::kFloat), o);
      auto [conf, pred] = at::softmax(logits, 1).max(1);
      at::Tensor prediction = pred.squeeze(0).to(at::kByte), confidence = conf.squeeze(0);
      return [prediction, confidence](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("prediction", TensorToJs(env, prediction));
        out.Set("confidence", TensorToJs(env, confidence));
        return out;
      };
    }, {info[0]});
  }

  // evaluateBatch(images Bx3xHxW, labels BxHxW, ignoreIndex) -> C x C confusion matrix
  Napi::Value EvaluateBatchJs(const Napi::CallbackInfo& info) {
    Alive();
    at::Tensor images = Input(info[0], "images");
    at::Tensor labels = Input(info[1], "labels");
    const int64_t ignore = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 255;
    auto s = state_;
    model::InferenceOptions o = InferenceFromJs(Env().Undefined(), *s);
    return AsyncTask::Run(Env(), [s, images, labels, ignore, o]() -> ResultBuilder {
      std::lock_guard<std::mutex> lock(s->mutex);
      at::Tensor m = model::EvaluateBatch(s->net, images.to(s->device, at::kFloat), labels.to(s->device, at::kLong), ignore, o);
      return [m](Napi::Env env) { return TensorToJs(env, m); };
    }, {info[0], info[1]});
  }

  Napi::Value NumClasses(const Napi::CallbackInfo& info) {
    Alive();
    return Napi::Number::New(Env(), static_cast<double>(state_->net->options().num_classes));
  }

  static Napi::FunctionReference& constructor() {
    static Napi::FunctionReference ref;
    return ref;
  }

  std::shared_ptr<ModelState> state_;
  friend void RegisterModel(Napi::Env env, Napi::Object exports);
  friend Napi::Object WrapModelState(Napi::Env env, std::shared_ptr<ModelState> state);
  friend std::shared_ptr<ModelState> UnwrapModelState(const Napi::Value& value, const char* what);
};

Napi::Object WrapModelState(Napi::Env env, std::shared_ptr<ModelState> state) {
  auto holder = Napi::External<std::shared_ptr<ModelState>>::New(
      env, new std::shared_ptr<ModelState>(std::move(state)), [](Napi::Env, std::shared_ptr<ModelState>* p) { delete p; });
  return AddonModel::constructor().New({holder});
}

std::shared_ptr<ModelState> UnwrapModelState(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(AddonModel::constructor().Value()))
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be an AddonModel");
  auto state = AddonModel::Unwrap(value.As<Napi::Object>())->state_;
  if (!state->net) throw Napi::Error::New(value.Env(), std::string(what) + ": this model's memory was released (its AddonTrainer was disposed)");
  return state;
}

void RegisterModel(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = AddonModel::Define(env);
  AddonModel::constructor() = Napi::Persistent(cls);
  exports.Set("AddonModel", cls);
}

}  // namespace u2pl::addon
