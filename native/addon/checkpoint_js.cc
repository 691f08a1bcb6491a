// readCheckpoint / writeCheckpoint: PyTorch zip checkpoints as plain JS objects.
#include "addon/addon.h"
#include "addon/async_task.h"
#include "addon/js_value.h"
#include "io/checkpoint.h"

namespace u2pl::addon {
namespace {

std::string PathArgument(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  if (info.Length() <= index || !info[index].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + " expects a file path");
  return info[index].As<Napi::String>().Utf8Value();
}

Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) {
  const std::string path = PathArgument(info, 0, "readCheckpoint(path)");
  return AsyncTask::Run(info.Env(), [path]() -> ResultBuilder {
    io::ValuePtr root = io::ReadCheckpoint(path);
    return [root](Napi::Env env) { return ValueToJs(env, root); };
  });
}

Napi::Value WriteCheckpoint(const Napi::CallbackInfo& info) {
  const std::string path = PathArgument(info, 0, "writeCheckpoint(path, value)");
  if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "writeCheckpoint(path, value) expects a value");
  io::ValuePtr root = ValueFromJs(info[1], "value");
  return AsyncTask::Run(
      info.Env(),
      [path, root]() -> ResultBuilder {
        io::WriteCheckpoint(path, root);
        return nullptr;
      },
      {info[1]});
}

}  // namespace

void RegisterCheckpoint(Napi::Env env, Napi::Object exports) {
  exports.Set("readCheckpoint", Napi::Function::New(env, ReadCheckpoint, "readCheckpoint"));
  exports.Set("writeCheckpoint", Napi::Function::New(env, WriteCheckpoint, "writeCheckpoint"));
}

}  // namespace u2pl::addon
