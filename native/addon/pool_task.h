// Short native work without LibTorch parallelism (image augmentation) on the libuv pool, so it
// runs beside the training step on the compute thread.
#pragma once

#include <functional>
#include <vector>

#include <napi.h>

#include "addon/async_task.h"

namespace u2pl::addon {

class PoolTask : public Napi::AsyncWorker {
 public:
  static Napi::Promise Run(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive = {});

 private:
  PoolTask(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive);
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

  Napi::Promise::Deferred deferred_;
  std::function<ResultBuilder()> work_;
  ResultBuilder build_;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
};

}  // namespace u2pl::addon
