#include "addon/async_task.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include "addon/errors.h"

namespace u2pl::addon {

AsyncTask::AsyncTask(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive)
    : Napi::AsyncWorker(env, "u2pl:AsyncTask"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {
  for (auto& value : keepAlive) keepAlive_.push_back(Napi::Reference<Napi::Value>::New(value, 1));
}

Napi::Promise AsyncTask::Run(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive) {
  auto* task = new AsyncTask(env, std::move(work), std::move(keepAlive));
  Napi::Promise promise = task->Promise();
  task->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

void AsyncTask::Execute() {
  // Pool threads start with OpenMP's default team size and grad mode on: make them follow
  // the thread count set with setThreads() and leave grad mode to the work itself.
  at::init_num_threads();
  c10::AutoGradMode gradMode(false);
  try {
    build_ = work_();
  } catch (...) {
    SetError(CurrentExceptionMessage(std::current_exception()));
  }
}

void AsyncTask::OnOK() {
  Napi::Env env = Env();
  try {
    deferred_.Resolve(build_ ? build_(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(Napi::Error::New(env, CurrentExceptionMessage(std::current_exception())).Value());
  }
}

void AsyncTask::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace u2pl::addon
