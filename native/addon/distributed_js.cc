// joinProcessGroup() and AddonProcessGroup: a c10d process group (native/train/distributed) for
// data-parallel training. Joining waits for every rank, so it runs on the compute thread and
// returns a Promise; the group then goes to new AddonTrainer({ processGroup }).
#include <ATen/ATen.h>

#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/errors.h"
#include "addon/js_options.h"
#include "addon/js_tensor.h"
#include "addon/process_group.h"
#include "train/distributed.h"

namespace u2pl::addon {

class AddonProcessGroup : public Napi::ObjectWrap<AddonProcessGroup> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonProcessGroup",
                       {InstanceMethod("rank", &AddonProcessGroup::Rank), InstanceMethod("worldSize", &AddonProcessGroup::WorldSize),
                        InstanceMethod("allReduceSum", &AddonProcessGroup::AllReduceSum),
                        InstanceMethod("allGather", &AddonProcessGroup::AllGather),
                        InstanceMethod("barrier", &AddonProcessGroup::Barrier)});
  }

  explicit AddonProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonProcessGroup>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "use joinProcessGroup(options)");
    comm_ = *info[0].As<Napi::External<std::shared_ptr<train::Communicator>>>().Data();
  }

  std::shared_ptr<train::Communicator> communicator() const { return comm_; }

  static Napi::FunctionReference& constructor() {
    static Napi::FunctionReference ref;
    return ref;
  }

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(Env(), comm_->rank()); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(Env(), comm_->world_size()); }

  // allReduceSum(tensor) -> Promise<tensor summed over the ranks> (a copy; the input is unchanged).
  Napi::Value AllReduceSum(const Napi::CallbackInfo& info) {
    at::Tensor input = TensorFromJs(info[0], "tensor");
    auto comm = comm_;
    return AsyncTask::Run(Env(), [comm, input]() -> ResultBuilder {
      std::vector<at::Tensor> one{input.clone()};
      comm->AllReduceSum(one);
      at::Tensor out = one[0];
      return [out](Napi::Env env) { return TensorToJs(env, out); };
    }, {info[0]});
  }

  // allGather(tensor) -> Promise<every rank's tensor, in rank order>; their first dimensions may differ.
  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    at::Tensor input = TensorFromJs(info[0], "tensor");
    auto comm = comm_;
    return AsyncTask::Run(Env(), [comm, input]() -> ResultBuilder {
      TORCH_CHECK(input.dim() >= 1, "allGather needs a tensor of at least one dimension");
      std::vector<at::Tensor> all = comm->AllGatherRows(input.contiguous());
      return [all](Napi::Env env) {
        Napi::Array out = Napi::Array::New(env, all.size());
        for (size_t r = 0; r < all.size(); ++r) out.Set(static_cast<uint32_t>(r), TensorToJs(env, all[r].contiguous()));
        return out;
      };
    }, {info[0]});
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    auto comm = comm_;
    return AsyncTask::Run(Env(), [comm]() -> ResultBuilder {
      comm->Barrier();
      return nullptr;
    });
  }

  std::shared_ptr<train::Communicator> comm_;
};

std::shared_ptr<train::Communicator> UnwrapProcessGroup(const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(AddonProcessGroup::constructor().Value()))
    throw Napi::TypeError::New(value.Env(), "option 'processGroup' must come from joinProcessGroup()");
  return AddonProcessGroup::Unwrap(value.As<Napi::Object>())->communicator();
}

namespace {

// joinProcessGroup({ backend, rank, worldSize, masterAddr, masterPort, timeoutMs, device, agentStore, storePrefix })
//   -> Promise<AddonProcessGroup>
Napi::Value JoinProcessGroup(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info, 0, "joinProcessGroup(options)");
  train::DistributedOptions d;
  d.backend = OptString(o, "backend", "gloo");
  d.rank = static_cast<int>(OptInt(o, "rank", 0));
  d.world_size = static_cast<int>(OptInt(o, "worldSize", 1));
  d.master_addr = OptString(o, "masterAddr", "127.0.0.1");
  d.master_port = static_cast<int>(OptInt(o, "masterPort", 29500));
  d.timeout = std::chrono::milliseconds(OptInt(o, "timeoutMs", 300000));
  d.device = OptString(o, "device", "cpu");
  d.agent_store = OptBool(o, "agentStore", false);
  d.store_prefix = OptString(o, "storePrefix", "");
  return AsyncTask::Run(info.Env(), [d]() -> ResultBuilder {
    std::shared_ptr<train::Communicator> comm = train::CreateCommunicator(d);
    return [comm](Napi::Env env) -> Napi::Value {
      auto holder = Napi::External<std::shared_ptr<train::Communicator>>::New(
          env, new std::shared_ptr<train::Communicator>(comm), [](Napi::Env, std::shared_ptr<train::Communicator>* p) { delete p; });
      return AddonProcessGroup::constructor().New({holder});
    };
  });
}

}  // namespace

void RegisterDistributed(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = AddonProcessGroup::Define(env);
  AddonProcessGroup::constructor() = Napi::Persistent(cls);
  exports.Set("AddonProcessGroup", cls);
  exports.Set("joinProcessGroup", Napi::Function::New(env, JoinProcessGroup, "joinProcessGroup"));
}

}  // namespace u2pl::addon
