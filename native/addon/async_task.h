// Runs long native work on the libuv pool and settles a Promise on the main thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

namespace u2pl::addon {

// What the worker thread hands back: a function that builds the JS result on the main thread.
using ResultBuilder = std::function<Napi::Value(Napi::Env)>;

class AsyncTask : public Napi::AsyncWorker {
 public:
  // work runs on a worker thread and must not touch JS values; keepAlive holds JS objects whose
  // memory the work reads (zero-copy inputs) until the Promise settles.
  AsyncTask(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive);

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Queues the work and returns its Promise.
  static Napi::Promise Run(Napi::Env env, std::function<ResultBuilder()> work,
                           std::vector<Napi::Value> keepAlive = {});

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  Napi::Promise::Deferred deferred_;
  std::function<ResultBuilder()> work_;
  ResultBuilder build_;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
};

}  // namespace u2pl::addon
