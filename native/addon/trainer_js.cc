// AddonTrainer: student, teacher, optimizer, memory banks and RNG in native memory; one
// step() call per training step, run on the compute thread.
#include <chrono>

#include <ATen/ATen.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "addon/js_options.h"
#include "addon/js_tensor.h"
#include "addon/js_value.h"
#include "addon/model_state.h"
#include "addon/option_parsers.h"
#include "addon/process_group.h"
#include "io/checkpoint.h"
#include "model/model_io.h"
#include "model/state_dict.h"
#include "train/trainer.h"

namespace u2pl::addon {
namespace {

at::ScalarType AutocastFromJs(const Napi::Object& o) {
  const std::string name = OptString(o, "autocast", "");
  if (name.empty()) return at::ScalarType::Undefined;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  throw Napi::TypeError::New(o.Env(), "option 'autocast' must be null, 'bfloat16' or 'float16', got '" + name + "'");
}

const char* kNativeKeys[] = {"model_state", "teacher_state", "optimizer_state", "memory_bank", "rng_state", "class_criterion",
                             "cutmix_bank", "ael_ranks", "grad_scaler"};

std::vector<int64_t> IntList(const Napi::Object& o, const char* key) {
  std::vector<int64_t> out;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToNumber().Int64Value());
  return out;
}

Napi::Array IntArray(Napi::Env env, const std::vector<int64_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), static_cast<double>(v[i]));
  return a;
}

Napi::Object PlanToJs(Napi::Env env, const ael::AelPlan& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pasteClasses", IntArray(env, p.paste_classes));
  o.Set("keep", IntArray(env, p.keep));
  o.Set("mixClasses", IntArray(env, p.mix_classes));
  o.Set("bankImages", IntArray(env, p.bank_images));
  return o;
}

ael::AelPlan PlanFromJs(const Napi::Object& o) {
  return {IntList(o, "pasteClasses"), IntList(o, "keep"), IntList(o, "mixClasses"), IntList(o, "bankImages")};
}

train::AelOptions AelOptionsFromJs(const Napi::Object& o) {
  train::AelOptions a;
  a.enabled = true;
  a.state.unlabeled = OptInt(o, "unlabeled", 0);
  a.state.unlabeled_batch = OptInt(o, "unlabeledBatch", 2);
  a.state.paste_classes = IntList(o, "pasteClasses");
  a.state.paste_draws = OptInt(o, "pasteDraws", 3);
  a.state.adaptive_cutmix = OptBool(o, "adaptiveCutmix", true);
  a.state.momentum = OptDouble(o, "momentum", 0.999);
  a.state.absent_classes_decay = OptBool(o, "absentClassesDecay", true);
  a.state.use_one_unlabeled = OptBool(o, "useOneUnlabeled", true);
  a.state.replica_batch = OptInt(o, "replicaBatch", 2);
  if (a.state.replica_batch < 1) throw Napi::RangeError::New(o.Env(), "option 'ael.replicaBatch' must be at least 1");
  a.state.shared_across_ranks = OptBool(o, "sharedAcrossRanks", false);
  if (o.Get("consistency").IsObject()) {
    Napi::Object c = o.Get("consistency").As<Napi::Object>();
    a.consistency.gamma = OptDouble(c, "gamma", 2);
    a.consistency.gamma2 = OptDouble(c, "gamma2", 1);
    a.consistency.sample = OptBool(c, "sample", true);
    a.consistency.normalise_over_all = OptBool(c, "normaliseOverAll", true);
    a.consistency.shared_sampling_map = OptBool(c, "sharedSamplingMap", true);
  }
  a.consistency_weight = OptDouble(o, "consistencyWeight", 1);
  a.replicas = OptDouble(o, "replicas", 8);
  if (a.replicas <= 0) throw Napi::RangeError::New(o.Env(), "option 'ael.replicas' must be positive");
  a.box_min_area = OptDouble(o, "boxMinArea", 0.005);
  a.bank_min_area = OptDouble(o, "bankMinArea", 0.01);
  a.square_area = OptBool(o, "squareArea", true);
  a.ignore_confident = OptBool(o, "ignoreConfident", true);
  a.anchor_percentile = OptDouble(o, "anchorPercentile", 20);
  a.negative_percentile = OptDouble(o, "negativePercentile", 80);
  a.partner_by_label_sum = OptBool(o, "partnerByLabelSum", true);
  return a;
}

}  // namespace

class AddonTrainer : public Napi::ObjectWrap<AddonTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonTrainer",
                       {InstanceMethod("step", &AddonTrainer::Step), InstanceMethod("student", &AddonTrainer::Student),
                        InstanceMethod("teacher", &AddonTrainer::Teacher), InstanceMethod("save", &AddonTrainer::Save),
                        InstanceMethod("load", &AddonTrainer::Load), InstanceMethod("loadPretrained", &AddonTrainer::LoadPretrained),
                        InstanceMethod("bankSizes", &AddonTrainer::BankSizes),
                        InstanceMethod("bankCapacities", &AddonTrainer::BankCapacities),
                        InstanceMethod("aelPlan", &AddonTrainer::AelPlan), InstanceMethod("aelState", &AddonTrainer::AelState),
                        InstanceMethod("dispose", &AddonTrainer::Dispose)});
  }

  explicit AddonTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonTrainer>(info) {
    Napi::Env env = info.Env();
    Napi::Object o = ObjectArg(info, 0, "new AddonTrainer(options)");
    if (!o.Get("model").IsObject()) throw Napi::TypeError::New(env, "option 'model' must be the model options");
    model::ModelOptions mo = ModelOptionsFromJs(o.Get("model").As<Napi::Object>());
    const bool semi = OptBool(o, "semi", false);
    train::TrainerOptions t;
    t.ema_model = OptBool(o, "emaModel", false);
    const bool teacher = semi || t.ema_model;
    t.momentum = OptDouble(o, "momentum", 0.9);
    t.weight_decay = OptDouble(o, "weightDecay", 1e-4);
    t.seed = static_cast<uint64_t>(OptInt(o, "seed", 0));
    t.autocast = AutocastFromJs(o);
    if (o.Get("lossScaling").IsObject()) {
      Napi::Object l = o.Get("lossScaling").As<Napi::Object>();
      t.loss_scaling.enabled = true;
      t.loss_scaling.init_scale = OptDouble(l, "initScale", 65536);
      t.loss_scaling.growth_factor = OptDouble(l, "growthFactor", 2);
      t.loss_scaling.backoff_factor = OptDouble(l, "backoffFactor", 0.5);
      t.loss_scaling.growth_interval = OptInt(l, "growthInterval", 2000);
    }
    t.channels_last = OptBool(o, "channelsLast", false);
    if (o.Get("supervised").IsObject()) {
      Napi::Object s = o.Get("supervised").As<Napi::Object>();
      t.supervised.ohem = OptBool(s, "ohem", false);
      t.supervised.ohem_thresh = OptDouble(s, "thresh", 0.7);
      t.supervised.ohem_min_kept = OptInt(s, "minKept", 100000);
      t.supervised.aux_weight = OptDouble(s, "auxWeight", 0.4);
      t.supervised.ignore_index = OptInt(s, "ignoreIndex", 255);
      const std::vector<double> weight = OptNumbers(s, "classWeight");
      if (!weight.empty()) {
        if (static_cast<int64_t>(weight.size()) != mo.num_classes)
          throw Napi::TypeError::New(env, "option 'supervised.classWeight' has " + std::to_string(weight.size()) + " entries for " +
                                              std::to_string(mo.num_classes) + " classes");
        t.supervised.class_weight = at::tensor(weight, at::kDouble).to(at::kFloat);
      }
    }
    if (o.Get("unsupervised").IsObject()) {
      Napi::Object u = o.Get("unsupervised").As<Napi::Object>();
      t.weighting = OptString(u, "weighting", "reference") == "paper" ? loss::UnsupervisedWeighting::kPaper : loss::UnsupervisedWeighting::kReference;
      t.unsupervised_weight = OptDouble(u, "weight", 1.0);
      const std::string mode = OptString(u, "pseudoLabels", "eval");
      if (mode != "eval" && mode != "train") throw Napi::TypeError::New(env, "option 'unsupervised.pseudoLabels' must be eval or train, got '" + mode + "'");
      t.pseudo_labels_train_mode = mode == "train";
      t.confidence_threshold = OptDouble(u, "confidenceThreshold", 0);
      t.flip_pseudo_labels = OptBool(u, "flipPseudoLabels", false);
    }
    t.teacher_bn_ema = OptString(o, "teacherBn", "own") == "ema";
    if (o.Get("contrastive").IsObject()) {
      Napi::Object c = o.Get("contrastive").As<Napi::Object>();
      t.contrastive = true;
      t.contrastive_options = ContrastiveOptionsFromJs(c);
      t.contrastive_options.ignore_index = t.supervised.ignore_index;
      t.contrastive_weight = OptDouble(c, "weight", 1.0);
      Napi::Value q = c.Get("queueSize");
      if (q.IsArray())
        for (uint32_t i = 0; i < q.As<Napi::Array>().Length(); ++i) t.queue_size.push_back(q.As<Napi::Array>().Get(i).ToNumber().Int64Value());
    }
    const std::string mix = OptString(o, "mix", "");
    if (mix == "cutmix") t.mix = loss::MixMode::kCutMix;
    else if (mix == "cutout") t.mix = loss::MixMode::kCutOut;
    else if (mix == "classmix") t.mix = loss::MixMode::kClassMix;
    else if (!mix.empty()) throw Napi::TypeError::New(env, "option 'mix' must be cutmix, cutout or classmix, got '" + mix + "'");
    const std::string device = OptString(o, "device", "cpu");
    if (!o.Get("processGroup").IsUndefined() && !o.Get("processGroup").IsNull()) t.communicator = UnwrapProcessGroup(o.Get("processGroup"));
    t.sync_bn = OptBool(o, "syncBn", true);
    t.contrastive_world_scaling = OptBool(o, "contrastiveWorldScaling", true);
    if (o.Get("ael").IsObject()) {
      t.ael = AelOptionsFromJs(o.Get("ael").As<Napi::Object>());
      t.ael.consistency.ignore_index = t.supervised.ignore_index;
    }

    GuardJs(env, [&] { RunOnComputeThread([&] {
      auto make = [&](uint64_t seed) {
        at::manual_seed(seed);
        auto s = std::make_shared<ModelState>();
        s->device = at::Device(device);
        s->net = model::SegmentationModel(mo);
        s->net->to(s->device);
        s->autocast = t.autocast;
        s->channels_last = t.channels_last;
        return s;
      };
      student_ = make(t.seed);
      if (teacher) teacher_ = make(t.seed + 1);
      trainer_ = std::make_shared<train::Trainer>(student_->net, teacher ? teacher_->net : model::SegmentationModel(nullptr), t);
    }); });
    // V8 cannot see native memory: tell it roughly what this trainer holds (weights of both
    // networks, gradients, momentum) so that dropped trainers are collected in time.
    external_ = ParameterBytes(*student_->net) * (teacher ? 4 : 3);
    Napi::MemoryManagement::AdjustExternalMemory(env, external_);
  }

  // Collected without dispose(): the memory goes with the last reference (queued work may hold
  // one), so only V8's account is settled here.
  ~AddonTrainer() override {
    try {
      if (external_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_);
    } catch (...) {
      // the environment is being torn down
    }
  }

 private:
  static int64_t ParameterBytes(const torch::nn::Module& m) {
    int64_t bytes = 0;
    for (const auto& p : m.parameters()) bytes += p.numel() * static_cast<int64_t>(p.element_size());
    return bytes;
  }

  // Frees the networks, the optimizer and the banks (call it with no work queued on them).
  void Release() {
    if (!trainer_) return;
    for (auto& s : {student_, teacher_}) {
      if (!s) continue;
      std::lock_guard<std::mutex> lock(s->mutex);
      s->net = model::SegmentationModel(nullptr);
    }
    trainer_.reset();
    if (external_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_);
    external_ = 0;
  }

  void Alive() const {
    if (!trainer_) throw Napi::Error::New(Env(), "this AddonTrainer was disposed");
  }

  // dispose(): releases the native memory now (what a finished run no longer needs) rather than
  // whenever the garbage collector gets to this handle. Call it once the work on the trainer and
  // its models has settled; the handle and its models are unusable after.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Release();
    return Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Alive();
    Napi::Object o = ObjectArg(info, 0, "step(inputs)");
    train::StepInputs in;
    const std::string phase = OptString(o, "phase", "semi");
    if (phase == "supervised") in.phase = train::Phase::kSupervised;
    else if (phase == "warmup") in.phase = train::Phase::kWarmup;
    else if (phase == "semi") in.phase = train::Phase::kSemi;
    else if (phase == "floor") in.phase = train::Phase::kSemiFloor;
    else if (phase == "floor-warmup") in.phase = train::Phase::kWarmupFloor;
    else if (phase == "floor-supervised") in.phase = train::Phase::kSupervisedFloor;
    else if (phase == "ael") in.phase = train::Phase::kAel;
    else throw Napi::TypeError::New(Env(), "step option 'phase' must be supervised, warmup, semi, ael, floor, floor-warmup or floor-supervised, got '" + phase + "'");
    in.labeled_images = TensorFromJs(o.Get("labeledImages"), "labeledImages");
    in.labels = TensorFromJs(o.Get("labels"), "labels");
    if (in.phase == train::Phase::kSemi || in.phase == train::Phase::kSemiFloor || in.phase == train::Phase::kAel)
      in.unlabeled_images = TensorFromJs(o.Get("unlabeledImages"), "unlabeledImages");
    if (in.phase == train::Phase::kAel) {
      if (!trainer_->ael()) throw Napi::Error::New(Env(), "step phase 'ael' needs a trainer built with the 'ael' option");
      if (!o.Get("partnerImages").IsUndefined()) {
        in.partner_images = TensorFromJs(o.Get("partnerImages"), "partnerImages");
        in.partner_labels = TensorFromJs(o.Get("partnerLabels"), "partnerLabels");
        Napi::Value flags = o.Get("hasPartner");
        if (flags.IsArray())
          for (uint32_t i = 0; i < flags.As<Napi::Array>().Length(); ++i) in.has_partner.push_back(flags.As<Napi::Array>().Get(i).ToBoolean());
        else in.has_partner.assign(in.partner_images.size(0), true);
      }
      in.unlabeled_index = IntList(o, "unlabeledIndex");
      if (!o.Get("plan").IsObject()) throw Napi::TypeError::New(Env(), "step option 'plan' must be the step's AEL plan (aelPlan() or the last step's nextPlan)");
      in.plan = PlanFromJs(o.Get("plan").As<Napi::Object>());
      in.consistency_percent = OptDouble(o, "consistencyPercent", 20);
      in.contrastive_on = OptBool(o, "contrastiveOn", true);
      in.next_plan_seed = static_cast<uint64_t>(OptInt(o, "nextPlanSeed", 0));
    }
    in.lr_backbone = OptDouble(o, "lrBackbone", 0);
    in.lr_head = OptDouble(o, "lrHead", in.lr_backbone);
    in.copy_teacher = OptBool(o, "copyTeacher", false);
    in.ema_decay = OptDouble(o, "emaDecay", 0.99);
    in.drop_percentile = OptDouble(o, "dropPercentile", 80);
    in.alpha = OptDouble(o, "alpha", 20);
    in.stop_requested = OptBool(o, "stop", false);
    if (!o.Get("unlabeledTruth").IsUndefined()) in.unlabeled_truth = TensorFromJs(o.Get("unlabeledTruth"), "unlabeledTruth");
    if (!o.Get("classScale").IsUndefined()) in.class_scale = TensorFromJs(o.Get("classScale"), "classScale");
    if (!o.Get("classPrior").IsUndefined()) in.class_prior = TensorFromJs(o.Get("classPrior"), "classPrior");
    if (in.phase == train::Phase::kSemi && !o.Get("unlabeledStrongImages").IsUndefined()) in.unlabeled_strong = TensorFromJs(o.Get("unlabeledStrongImages"), "unlabeledStrongImages");
    auto trainer = trainer_;
    auto student = student_, teacher = teacher_;
    return AsyncTask::Run(Env(), [trainer, student, teacher, in]() -> ResultBuilder {
      std::unique_lock<std::mutex> a(student->mutex, std::defer_lock), b;
      if (teacher) {
        b = std::unique_lock<std::mutex>(teacher->mutex, std::defer_lock);
        std::lock(a, b);
      } else {
        a.lock();
      }
      const auto t0 = std::chrono::steady_clock::now();
      train::StepResult r = trainer->Step(in);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return [r, seconds](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("loss", r.loss);
        out.Set("supervised", r.supervised);
        out.Set("unsupervised", r.unsupervised);
        out.Set("contrastive", r.contrastive);
        out.Set("mixed", r.mixed);
        out.Set("unsupThreshold", r.unsup_threshold);
        out.Set("unsupKept", static_cast<double>(r.unsup_kept));
        out.Set("unsupValid", static_cast<double>(r.unsup_valid));
        out.Set("pseudoLabelPixels", static_cast<double>(r.pl_pixels));
        out.Set("pseudoLabelCorrect", static_cast<double>(r.pl_correct));
        out.Set("pseudoLabelKeptPixels", static_cast<double>(r.pl_kept_pixels));
        out.Set("pseudoLabelKeptCorrect", static_cast<double>(r.pl_kept_correct));
        out.Set("validClasses", static_cast<double>(r.valid_classes));
        for (const auto& [name, values] : {std::pair<const char*, const std::vector<double>*>{"labeledClassPixels", &r.labeled_class_pixels},
                                           {"teacherClassMass", &r.teacher_class_mass},
                                           {"pseudoClassPixels", &r.pseudo_class_pixels},
                                           {"pseudoLabelClassTruth", &r.pl_class_truth},
                                           {"pseudoLabelClassPredicted", &r.pl_class_predicted},
                                           {"pseudoLabelClassRight", &r.pl_class_right}}) {
          Napi::Array a = Napi::Array::New(env, values->size());
          for (size_t c = 0; c < values->size(); ++c) a.Set(static_cast<uint32_t>(c), (*values)[c]);
          out.Set(name, a);
        }
        out.Set("seconds", seconds);
        out.Set("stop", r.stop);
        out.Set("skipped", r.skipped);
        out.Set("lossScale", r.loss_scale);
        Napi::Object phases = Napi::Object::New(env);
        const train::StepPhases& p = r.phases;
        for (const auto& [name, value] : {std::pair<const char*, double>{"pseudoLabels", p.pseudo_labels}, {"mixing", p.mixing},
                                          {"studentForward", p.student_forward}, {"teacherForward", p.teacher_forward},
                                          {"losses", p.losses}, {"backward", p.backward}, {"optimizer", p.optimizer},
                                          {"ema", p.ema}, {"other", p.other}})
          phases.Set(name, value);
        out.Set("phases", phases);
        out.Set("pasted", static_cast<double>(r.pasted));
        out.Set("componentBoxes", static_cast<double>(r.component_boxes));
        if (!r.next_plan.keep.empty() || !r.next_plan.paste_classes.empty()) out.Set("nextPlan", PlanToJs(env, r.next_plan));
        return out;
      };
    }, {o});
  }

  Napi::Value Student(const Napi::CallbackInfo& info) { Alive(); return WrapModelState(Env(), student_); }
  Napi::Value Teacher(const Napi::CallbackInfo& info) { Alive(); return teacher_ ? Napi::Value(WrapModelState(Env(), teacher_)) : Env().Null(); }

  // save(path, extra): the native state plus `extra` (epoch, step, best_miou, config, ...), atomically.
  Napi::Value Save(const Napi::CallbackInfo& info) {
    Alive();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(Env(), "save(path, extra) expects a file path");
    const std::string path = info[0].As<Napi::String>();
    io::ValuePtr extra = info.Length() > 1 && info[1].IsObject() ? ValueFromJs(info[1], "extra") : io::Value::Dict();
    // Data parallel: every rank calls save (the state gathers the ranks' generators); rank 0 writes,
    // or every rank with { everyRank: true } (no shared file system, tests).
    const bool every_rank = info.Length() > 2 && info[2].IsObject() && OptBool(info[2].As<Napi::Object>(), "everyRank", false);
    auto trainer = trainer_;
    auto student = student_, teacher = teacher_;
    return AsyncTask::Run(Env(), [=]() -> ResultBuilder {
      std::lock_guard<std::mutex> a(student->mutex);
      io::ValuePtr root = trainer->State();
      for (const auto& [k, v] : extra->entries) root->entries.emplace_back(k, v);
      if (every_rank || trainer->rank() == 0) io::WriteCheckpoint(path, root);
      return nullptr;
    }, {info.Length() > 1 ? info[1] : Env().Undefined()});
  }

  // load(path) -> the entries that are not native state (epoch, step, best_miou, config, ...).
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Alive();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(Env(), "load(path) expects a file path");
    const std::string path = info[0].As<Napi::String>();
    auto trainer = trainer_;
    auto student = student_;
    return AsyncTask::Run(Env(), [=]() -> ResultBuilder {
      io::ValuePtr root = io::ReadCheckpoint(path);
      {
        std::lock_guard<std::mutex> a(student->mutex);
        trainer->LoadState(root, path);
      }
      auto rest = io::Value::Dict();
      for (const auto& [k, v] : root->entries) {
        bool native = false;
        for (const char* n : kNativeKeys) native = native || (k->is(io::Value::Kind::String) && k->text == n);
        if (!native) rest->entries.emplace_back(k, v);
      }
      return [rest](Napi::Env env) { return ValueToJs(env, rest); };
    });
  }

  // loadPretrained(path): an ImageNet checkpoint into the encoder of the student (and teacher).
  Napi::Value LoadPretrained(const Napi::CallbackInfo& info) {
    Alive();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(Env(), "loadPretrained(path) expects a file path");
    const std::string path = info[0].As<Napi::String>();
    auto student = student_, teacher = teacher_;
    return AsyncTask::Run(Env(), [=]() -> ResultBuilder {
      io::ValuePtr root = io::ReadCheckpoint(path);
      std::string used;
      model::NamedTensors entries = model::StateDictFromCheckpoint(root, "", path, &used);
      model::LoadReport report;
      for (auto& s : {student, teacher}) {
        if (!s) continue;
        std::lock_guard<std::mutex> lock(s->mutex);
        try {
          report = model::LoadStateDict(*s->net->named_children()["encoder"], entries);
        } catch (const std::exception& e) {
          throw std::runtime_error(path + ": " + e.what());
        }
        if (s->channels_last) model::SetChannelsLast(*s->net, true);
      }
      return [report](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("loaded", static_cast<double>(report.loaded));
        Napi::Array missing = Napi::Array::New(env), unexpected = Napi::Array::New(env);
        for (size_t i = 0; i < report.missing.size(); ++i) missing.Set(static_cast<uint32_t>(i), report.missing[i]);
        for (size_t i = 0; i < report.unexpected.size(); ++i) unexpected.Set(static_cast<uint32_t>(i), report.unexpected[i]);
        out.Set("missing", missing);
        out.Set("unexpected", unexpected);
        return out;
      };
    });
  }

  Napi::Value BankSizes(const Napi::CallbackInfo& info) {
    Alive();
    loss::MemoryBank* bank = trainer_->bank();
    Napi::Array out = Napi::Array::New(Env());
    if (bank)
      for (int64_t c = 0; c < bank->num_classes(); ++c) out.Set(static_cast<uint32_t>(c), static_cast<double>(bank->size(c)));
    return out;
  }

  Napi::Value BankCapacities(const Napi::CallbackInfo& info) {
    Alive();
    loss::MemoryBank* bank = trainer_->bank();
    Napi::Array out = Napi::Array::New(Env());
    if (bank)
      for (int64_t c = 0; c < bank->num_classes(); ++c) out.Set(static_cast<uint32_t>(c), static_cast<double>(bank->capacity(c)));
    return out;
  }

  // aelPlan(seed): the plan a step would follow now (the first step's; later ones come as nextPlan).
  Napi::Value AelPlan(const Napi::CallbackInfo& info) {
    Alive();
    if (!trainer_->ael()) throw Napi::Error::New(Env(), "aelPlan() needs a trainer built with the 'ael' option");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(Env(), "aelPlan(seed) expects the plan's seed");
    const uint64_t seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    auto trainer = trainer_;
    return AsyncTask::Run(Env(), [trainer, seed]() -> ResultBuilder {
      ael::AelPlan plan = trainer->AelPlan(seed);
      return [plan](Napi::Env env) -> Napi::Value { return PlanToJs(env, plan); };
    });
  }

  // aelState(): { kappa: 3 x C, bank: C x N_u } (null without AEL).
  Napi::Value AelState(const Napi::CallbackInfo& info) {
    Alive();
    if (!trainer_->ael()) return Env().Null();
    auto trainer = trainer_;
    return AsyncTask::Run(Env(), [trainer]() -> ResultBuilder {
      at::Tensor kappa = trainer->ael()->kappa().clone(), bank = trainer->ael()->bank().clone();
      return [kappa, bank](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("kappa", TensorToJs(env, kappa));
        o.Set("bank", TensorToJs(env, bank));
        return o;
      };
    });
  }

  std::shared_ptr<ModelState> student_, teacher_;
  std::shared_ptr<train::Trainer> trainer_;
  int64_t external_ = 0;
};

void RegisterTrainer(Napi::Env env, Napi::Object exports) {
  static Napi::FunctionReference constructor;
  Napi::Function cls = AddonTrainer::Define(env);
  constructor = Napi::Persistent(cls);
  exports.Set("AddonTrainer", cls);
}

}  // namespace u2pl::addon
