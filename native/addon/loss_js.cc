// The U2PL loss kernels and their composite references, exposed for tests, benches and the
// TypeScript training step. Each call takes plain tensors and returns values and gradients.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/js_options.h"
#include "addon/js_tensor.h"
#include "addon/option_parsers.h"
#include "loss/composite/composite.h"
#include "loss/contrastive.h"
#include "loss/entropy.h"
#include "loss/loss_benchmark.h"
#include "loss/metrics.h"
#include "loss/mixing.h"
#include "loss/percentile.h"
#include "loss/supervised.h"
#include "loss/unsupervised.h"

namespace u2pl::addon {
namespace {

bool Composite(const Napi::Object& o) {
  const std::string impl = OptString(o, "impl", "kernel");
  if (impl != "kernel" && impl != "composite")
    throw Napi::TypeError::New(o.Env(), "option 'impl' must be 'kernel' or 'composite', got '" + impl + "'");
  return impl == "composite";
}

// Where the kernels run: 'cpu' (default) or 'cuda' (the CUDA kernels, when LibTorch has CUDA).
at::Device DeviceOption(const Napi::Object& o) {
  const std::string device = OptString(o, "device", "cpu");
  if (device == "cpu") return at::Device(at::kCPU);
  if (device != "cuda") throw Napi::TypeError::New(o.Env(), "option 'device' must be 'cpu' or 'cuda', got '" + device + "'");
  if (!at::hasCUDA()) throw Napi::Error::New(o.Env(), "option 'device' is 'cuda', but this LibTorch or machine has no CUDA device");
  return at::Device(at::kCUDA);
}

at::Tensor Leaf(const at::Tensor& t, at::Device device = at::kCPU) {
  return t.to(device, at::kFloat).clone().requires_grad_(true);
}

Napi::Value GradOrNull(Napi::Env env, const at::Tensor& leaf) {
  return leaf.grad().defined() ? Napi::Value(TensorToJs(env, leaf.grad().cpu())) : env.Null();
}

Napi::Value PercentileJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "percentile(options)");
  at::Tensor values = TensorFromJs(o.Get("values"), "values");
  const double q = OptDouble(o, "q", 50);
  const bool composite = Composite(o);
  return AsyncTask::Run(info.Env(), [values, q, composite]() -> ResultBuilder {
    double v = (composite ? loss::composite::Percentile(values, q) : loss::Percentile(values, q)).item<double>();
    return [v](Napi::Env env) { return Napi::Number::New(env, v); };
  }, {o});
}

Napi::Value EntropyJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "entropy(options)");
  at::Tensor logits = TensorFromJs(o.Get("logits"), "logits");
  const int64_t h = OptInt(o, "height", 0), w = OptInt(o, "width", 0);
  const bool composite = Composite(o);
  const at::Device device = DeviceOption(o);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    const at::Tensor x = logits.to(device, at::kFloat);
    at::Tensor e = (composite ? loss::composite::UpsampledEntropy(x, h, w) : loss::UpsampledEntropy(x, h, w)).cpu();
    return [e](Napi::Env env) { return TensorToJs(env, e); };
  }, {o});
}

Napi::Value SupervisedJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "supervisedLoss(options)");
  at::Tensor pred = TensorFromJs(o.Get("pred"), "pred");
  at::Tensor aux = o.Has("aux") && !o.Get("aux").IsUndefined() ? TensorFromJs(o.Get("aux"), "aux") : at::Tensor();
  at::Tensor labels = TensorFromJs(o.Get("labels"), "labels");
  loss::SupervisedOptions s;
  s.ohem = OptBool(o, "ohem", false);
  s.ohem_thresh = OptDouble(o, "thresh", 0.7);
  s.ohem_min_kept = OptInt(o, "minKept", 100000);
  s.aux_weight = OptDouble(o, "auxWeight", 0.4);
  s.ignore_index = OptInt(o, "ignoreIndex", 255);
  const std::vector<double> weight = OptNumbers(o, "classWeight");
  if (!weight.empty()) s.class_weight = at::tensor(weight, at::kDouble).to(at::kFloat);
  const bool composite = Composite(o);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    c10::AutoGradMode grad(true);
    at::Tensor p = Leaf(pred), a = aux.defined() ? Leaf(aux) : at::Tensor(), y = labels.to(at::kLong);
    at::Tensor value;
    if (!composite) {
      value = loss::SupervisedLoss(p, a, y, s);
    } else {
      // Composite: upsample, the reference's sort-based OHEM selection, ATen (weighted) mean CE.
      auto one = [&](const at::Tensor& logits) {
        at::Tensor up = at::upsample_bilinear2d(logits, {y.size(1), y.size(2)}, true);
        at::Tensor target = y;
        if (s.ohem) target = y.masked_fill(loss::composite::OhemKeepMask(up, y, s.ohem_thresh, s.ohem_min_kept, s.ignore_index).logical_not(), s.ignore_index);
        if (target.ne(s.ignore_index).sum().item<int64_t>() == 0) return up.sum() * 0.0;
        return at::cross_entropy_loss(up, target, s.class_weight, at::Reduction::Mean, s.ignore_index);
      };
      value = one(p);
      if (a.defined()) value = value + s.aux_weight * one(a);
    }
    value.backward();
    double v = value.item<double>();
    return [v, p, a](Napi::Env env) -> Napi::Value {
      Napi::Object r = Napi::Object::New(env);
      r.Set("loss", v);
      r.Set("gradPred", GradOrNull(env, p));
      if (a.defined()) r.Set("gradAux", GradOrNull(env, a));
      return r;
    };
  }, {o});
}

Napi::Value UnsupervisedJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "unsupervisedLoss(options)");
  at::Tensor student = TensorFromJs(o.Get("student"), "student");
  at::Tensor teacher = TensorFromJs(o.Get("teacher"), "teacher");
  at::Tensor pseudo = TensorFromJs(o.Get("pseudo"), "pseudo");
  const double q = OptDouble(o, "q", 80);
  const std::string weighting = OptString(o, "weighting", "reference");
  if (weighting != "reference" && weighting != "paper")
    throw Napi::TypeError::New(info.Env(), "option 'weighting' must be 'reference' or 'paper', got '" + weighting + "'");
  const auto wmode = weighting == "paper" ? loss::UnsupervisedWeighting::kPaper : loss::UnsupervisedWeighting::kReference;
  const int64_t ignore = OptInt(o, "ignoreIndex", 255);
  const int64_t excluded = OptInt(o, "excludedPixels", 0);
  const bool composite = Composite(o);
  const at::Device device = DeviceOption(o);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    c10::AutoGradMode grad(true);
    at::Tensor s = Leaf(student, device), y = pseudo.to(device, at::kLong), t = teacher.to(device, at::kFloat);
    TORCH_CHECK(excluded >= 0 && excluded <= y.numel(), "unsupervised loss: excluded_pixels must be within 0..", y.numel(), ", got ", excluded);
    loss::UnsupervisedResult r = composite ? loss::composite::UnsupervisedLoss(s, t, y, q, wmode, ignore, excluded)
                                           : loss::UnsupervisedLoss(s, t, y, q, wmode, ignore, at::scalar_tensor(excluded, y.options()));
    r.loss.backward();
    const double v = r.loss.item<double>(), threshold = r.threshold.item<double>(), kept = r.kept.item<double>();
    return [v, s, r, threshold, kept](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("loss", v);
      out.Set("gradStudent", GradOrNull(env, s));
      out.Set("entropy", TensorToJs(env, r.entropy.cpu()));
      out.Set("threshold", threshold);
      out.Set("kept", kept);
      out.Set("valid", static_cast<double>(r.valid));
      return out;
    };
  }, {o});
}

}  // namespace

loss::ContrastiveOptions ContrastiveOptionsFromJs(const Napi::Object& o) {
  loss::ContrastiveOptions c;
  c.current_class_threshold = OptDouble(o, "currentClassThreshold", c.current_class_threshold);
  c.current_class_negative_threshold = OptDouble(o, "currentClassNegativeThreshold", c.current_class_negative_threshold);
  c.low_rank = OptInt(o, "lowRank", c.low_rank);
  c.high_rank = OptInt(o, "highRank", c.high_rank);
  c.temperature = OptDouble(o, "temperature", c.temperature);
  c.num_queries = OptInt(o, "numQueries", c.num_queries);
  c.num_negatives = OptInt(o, "numNegatives", c.num_negatives);
  c.negative_high_entropy = OptBool(o, "negativeHighEntropy", c.negative_high_entropy);
  c.reference_indexing = OptBool(o, "referenceIndexing", c.reference_indexing);
  const std::string negatives = OptString(o, "negatives", "reference");
  if (negatives != "reference" && negatives != "paper")
    throw Napi::TypeError::New(o.Env(), "option 'negatives' must be 'reference' or 'paper', got '" + negatives + "'");
  c.paper_negatives = negatives == "paper";
  c.ignore_index = OptInt(o, "ignoreIndex", c.ignore_index);
  return c;
}

namespace {

Napi::Value ContrastiveJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "contrastiveLoss(options)");
  loss::ContrastiveInputs in;
  in.rep = TensorFromJs(o.Get("rep"), "rep");
  in.rep_teacher = TensorFromJs(o.Get("repTeacher"), "repTeacher");
  in.prob_teacher = TensorFromJs(o.Get("probTeacher"), "probTeacher");
  in.labels = TensorFromJs(o.Get("labels"), "labels");
  in.pseudo = TensorFromJs(o.Get("pseudo"), "pseudo");
  in.entropy = TensorFromJs(o.Get("entropy"), "entropy");
  in.alpha = OptDouble(o, "alpha", 20);
  const loss::ContrastiveOptions options = ContrastiveOptionsFromJs(o);
  const uint64_t seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
  const bool composite = Composite(o);
  const at::Device device = DeviceOption(o);
  std::vector<int64_t> capacity;
  std::vector<at::Tensor> initial;
  Napi::Value caps = o.Get("capacities"), bank = o.Get("bank");
  if (!caps.IsArray()) throw Napi::TypeError::New(info.Env(), "option 'capacities' must be an array of queue sizes");
  for (uint32_t i = 0; i < caps.As<Napi::Array>().Length(); ++i) capacity.push_back(caps.As<Napi::Array>().Get(i).ToNumber().Int64Value());
  if (bank.IsArray())
    for (uint32_t i = 0; i < bank.As<Napi::Array>().Length(); ++i)
      initial.push_back(TensorFromJs(bank.As<Napi::Array>().Get(i), "bank[" + std::to_string(i) + "]"));
  return AsyncTask::Run(info.Env(), [=]() mutable -> ResultBuilder {
    c10::AutoGradMode grad(true);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    in.rep = Leaf(in.rep, device);
    in.rep_teacher = in.rep_teacher.to(device, at::kFloat);
    in.prob_teacher = in.prob_teacher.to(device, at::kFloat);
    in.labels = in.labels.to(device, at::kLong);
    in.pseudo = in.pseudo.to(device, at::kLong);
    in.entropy = in.entropy.to(device, at::kFloat);
    const int64_t d = in.rep.size(1);
    std::vector<at::Tensor> final_bank;
    loss::ContrastiveResult r;
    if (composite) {
      loss::composite::Queues queues{std::vector<at::Tensor>(capacity.size()), capacity};
      for (size_t c = 0; c < initial.size() && c < capacity.size(); ++c) queues.keys[c] = initial[c].to(device, at::kFloat).clone();
      r = loss::composite::ContrastiveLoss(in, options, queues, gen);
      for (auto& k : queues.keys) final_bank.push_back(k.defined() ? k.cpu() : at::empty({0, d}));
    } else {
      loss::MemoryBank memory(capacity, d, at::TensorOptions().dtype(at::kFloat).device(device));
      for (size_t c = 0; c < initial.size() && c < capacity.size(); ++c) memory.Restore(c, initial[c].to(device, at::kFloat));
      r = loss::ContrastiveLoss(in, options, memory, gen);
      for (int64_t c = 0; c < memory.num_classes(); ++c) final_bank.push_back(memory.Ordered(c).cpu());
    }
    r.loss.backward();
    double v = r.loss.item<double>();
    at::Tensor rep = in.rep;
    return [v, rep, r, final_bank](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("loss", v);
      out.Set("gradRep", GradOrNull(env, rep));
      out.Set("validClasses", static_cast<double>(r.valid_classes));
      out.Set("processedClasses", static_cast<double>(r.processed_classes));
      Napi::Array enq = Napi::Array::New(env, r.enqueued.size());
      for (size_t i = 0; i < r.enqueued.size(); ++i) enq.Set(static_cast<uint32_t>(i), static_cast<double>(r.enqueued[i]));
      out.Set("enqueued", enq);
      Napi::Array banks = Napi::Array::New(env, final_bank.size());
      for (size_t i = 0; i < final_bank.size(); ++i) banks.Set(static_cast<uint32_t>(i), TensorToJs(env, final_bank[i]));
      out.Set("bank", banks);
      return out;
    };
  }, {o});
}

Napi::Value MixJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "mix(options)");
  at::Tensor images = TensorFromJs(o.Get("images"), "images");
  at::Tensor labels = TensorFromJs(o.Get("labels"), "labels");
  at::Tensor confidence = TensorFromJs(o.Get("confidence"), "confidence");
  const std::string mode = OptString(o, "mode", "cutmix");
  loss::MixMode m;
  if (mode == "cutmix") m = loss::MixMode::kCutMix;
  else if (mode == "cutout") m = loss::MixMode::kCutOut;
  else if (mode == "classmix") m = loss::MixMode::kClassMix;
  else throw Napi::TypeError::New(info.Env(), "option 'mode' must be 'cutmix', 'cutout' or 'classmix', got '" + mode + "'");
  const uint64_t seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
  const int64_t ignore = OptInt(o, "ignoreIndex", 255);
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    loss::MixResult r = loss::Mix(images.to(at::kFloat), labels.to(at::kLong), confidence.to(at::kFloat), m, gen, ignore);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("images", TensorToJs(env, r.images));
      out.Set("labels", TensorToJs(env, r.labels));
      out.Set("confidence", TensorToJs(env, r.confidence));
      out.Set("mask", TensorToJs(env, r.mask));
      return out;
    };
  }, {o});
}

Napi::Value CutoutMasksJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "cutoutMasks(options)");
  const int64_t count = OptInt(o, "count", 1), h = OptInt(o, "height", 0), w = OptInt(o, "width", 0);
  const uint64_t seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    std::vector<at::Tensor> masks;
    for (int64_t i = 0; i < count; ++i) masks.push_back(loss::CutoutMask(h, w, gen));
    at::Tensor all = at::stack(masks);
    return [all](Napi::Env env) { return TensorToJs(env, all); };
  });
}

Napi::Value ConfusionMatrixJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "confusionMatrix(options)");
  at::Tensor pred = TensorFromJs(o.Get("prediction"), "prediction");
  at::Tensor gt = TensorFromJs(o.Get("groundTruth"), "groundTruth");
  const int64_t classes = OptInt(o, "classes", 0), ignore = OptInt(o, "ignoreIndex", 255);
  if (classes < 1) throw Napi::RangeError::New(info.Env(), "option 'classes' must be >= 1");
  return AsyncTask::Run(info.Env(), [=]() -> ResultBuilder {
    at::Tensor m = loss::ConfusionMatrix(pred, gt, classes, ignore);
    return [m](Napi::Env env) { return TensorToJs(env, m); };
  }, {o});
}

Napi::Value BenchmarkJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "benchmarkLosses(options)");
  loss::LossBenchmarkSpec s;
  s.labeled = OptInt(o, "labeled", s.labeled);
  s.unlabeled = OptInt(o, "unlabeled", s.unlabeled);
  s.classes = OptInt(o, "classes", s.classes);
  s.height = OptInt(o, "height", s.height);
  s.width = OptInt(o, "width", s.width);
  s.rep_height = OptInt(o, "repHeight", s.rep_height);
  s.rep_width = OptInt(o, "repWidth", s.rep_width);
  s.rep_dim = OptInt(o, "repDim", s.rep_dim);
  s.warmup = OptInt(o, "warmup", s.warmup);
  s.runs = OptInt(o, "runs", s.runs);
  s.composite = Composite(o);
  return AsyncTask::Run(info.Env(), [s]() -> ResultBuilder {
    std::vector<double> seconds = loss::TimeU2plLosses(s);
    return [seconds](Napi::Env env) -> Napi::Value {
      Napi::Array out = Napi::Array::New(env, seconds.size());
      for (size_t i = 0; i < seconds.size(); ++i) out.Set(static_cast<uint32_t>(i), seconds[i]);
      return out;
    };
  });
}

}  // namespace

void RegisterLosses(Napi::Env env, Napi::Object exports) {
  Napi::Object losses = Napi::Object::New(env);
  losses.Set("percentile", Napi::Function::New(env, PercentileJs, "percentile"));
  losses.Set("entropy", Napi::Function::New(env, EntropyJs, "entropy"));
  losses.Set("supervisedLoss", Napi::Function::New(env, SupervisedJs, "supervisedLoss"));
  losses.Set("unsupervisedLoss", Napi::Function::New(env, UnsupervisedJs, "unsupervisedLoss"));
  losses.Set("contrastiveLoss", Napi::Function::New(env, ContrastiveJs, "contrastiveLoss"));
  losses.Set("mix", Napi::Function::New(env, MixJs, "mix"));
  losses.Set("cutoutMasks", Napi::Function::New(env, CutoutMasksJs, "cutoutMasks"));
  losses.Set("confusionMatrix", Napi::Function::New(env, ConfusionMatrixJs, "confusionMatrix"));
  losses.Set("benchmarkLosses", Napi::Function::New(env, BenchmarkJs, "benchmarkLosses"));
  exports.Set("losses", losses);
}

}  // namespace u2pl::addon
