// Runs long native work on the addon's compute thread and settles a Promise on the JS thread.
//
// All LibTorch work goes through one dedicated thread rather than the libuv pool: with OpenMP,
// every thread that enters a parallel region gets its own team, and the idle teams of other pool
// threads spin against the active one (measured 1.4x slower on 2 cores). One thread also keeps
// thread-local LibTorch state (grad mode, autocast) in one place.
#pragma once

#include <functional>
#include <exception>
#include <vector>

#include <napi.h>

namespace u2pl::addon {

// What the compute thread hands back: a function that builds the JS result on the JS thread.
using ResultBuilder = std::function<Napi::Value(Napi::Env)>;

// Runs `work` on the compute thread and waits for it (exceptions are rethrown here). For the
// synchronous parts of the API (constructors, copyFrom, ...): LibTorch work on the JS thread
// would start a second OpenMP team, and with more OpenMP threads than cores libgomp stops
// spinning at barriers, so every parallel region of the training step then waits on futexes.
void RunOnComputeThread(const std::function<void()>& work);

class AsyncTask {
 public:
  // `work` runs on the compute thread and must not touch JS values; `keepAlive` holds JS objects
  // whose memory the work reads (zero-copy inputs) until the Promise settles. Tasks run in the
  // order they are queued.
  static Napi::Promise Run(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive = {});
};

}  // namespace u2pl::addon
