#include "addon/pool_task.h"

#include "addon/errors.h"

namespace u2pl::addon {

PoolTask::PoolTask(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive)
    : Napi::AsyncWorker(env, "u2pl:PoolTask"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {
  for (auto& value : keepAlive)
    if (value.IsObject()) keepAlive_.push_back(Napi::Reference<Napi::Value>::New(value, 1));  // only objects can be referenced
}

Napi::Promise PoolTask::Run(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive) {
  auto* task = new PoolTask(env, std::move(work), std::move(keepAlive));
  Napi::Promise promise = task->deferred_.Promise();
  task->Queue();  // deleted by node-addon-api after OnOK / OnError
  return promise;
}

void PoolTask::Execute() {
  try {
    build_ = work_();
  } catch (...) {
    SetError(CurrentExceptionMessage(std::current_exception()));
  }
}

void PoolTask::OnOK() {
  Napi::Env env = Env();
  try {
    deferred_.Resolve(build_ ? build_(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void PoolTask::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace u2pl::addon
