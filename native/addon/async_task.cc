#include "addon/async_task.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include "addon/errors.h"

namespace u2pl::addon {
namespace {

class ComputeThread {
 public:
  static ComputeThread& Instance() {
    static ComputeThread instance;
    return instance;
  }

  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  ~ComputeThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  ComputeThread() : thread_([this] { Loop(); }) {}

  void Loop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stop requested and nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      at::init_num_threads();  // follow the count last set with setThreads()
      c10::AutoGradMode grad_mode(false);  // work that trains enables it itself
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

struct PendingTask {
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keepAlive;
  std::function<ResultBuilder()> work;
  ResultBuilder build;
  std::string error;
  bool failed = false;
};

void Settle(Napi::Env env, Napi::Function, PendingTask* task) {
  std::unique_ptr<PendingTask> owned(task);
  if (env == nullptr) return;  // the environment is shutting down
  if (task->failed) {
    task->deferred.Reject(Napi::Error::New(env, task->error).Value());
    return;
  }
  try {
    task->deferred.Resolve(task->build ? task->build(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    task->deferred.Reject(e.Value());
  } catch (...) {
    task->deferred.Reject(Napi::Error::New(env, CurrentExceptionMessage(std::current_exception())).Value());
  }
}

}  // namespace

void RunOnComputeThread(const std::function<void()>& work) {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::exception_ptr error;
  ComputeThread::Instance().Post([&] {
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    done_cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mutex);
  done_cv.wait(lock, [&] { return done; });
  if (error) std::rethrow_exception(error);
}

Napi::Promise AsyncTask::Run(Napi::Env env, std::function<ResultBuilder()> work, std::vector<Napi::Value> keepAlive) {
  auto* task = new PendingTask{Napi::Promise::Deferred::New(env), {}, std::move(work), nullptr, {}, false};
  // Only objects can be referenced (an undefined optional argument needs no keeping).
  for (auto& value : keepAlive)
    if (value.IsObject()) task->keepAlive.push_back(Napi::Reference<Napi::Value>::New(value, 1));
  Napi::Promise promise = task->deferred.Promise();
  // The thread-safe function keeps the event loop alive until the result is delivered.
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "u2pl:compute", 0, 1);
  ComputeThread::Instance().Post([task, tsfn]() mutable {
    try {
      task->build = task->work();
    } catch (...) {
      task->failed = true;
      task->error = CurrentExceptionMessage(std::current_exception());
    }
    task->work = nullptr;  // drop captured tensors on this thread, not the JS one
    if (tsfn.NonBlockingCall(task, Settle) != napi_ok) delete task;
    tsfn.Release();
  });
  return promise;
}

}  // namespace u2pl::addon
