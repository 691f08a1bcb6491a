#include "addon/addon.h"
#include "util/cpu_allocator.h"

namespace u2pl::addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  util::InstallCachingCpuAllocator();  // before any tensor of the addon exists
  RegisterInfo(env, exports);
  RegisterTensorOps(env, exports);
  RegisterCheckpoint(env, exports);
  RegisterModel(env, exports);
  RegisterLosses(env, exports);
  RegisterAel(env, exports);
  RegisterData(env, exports);
  RegisterTrainer(env, exports);
  RegisterDistributed(env, exports);
  RegisterCudaMemory(env, exports);
  return exports;
}

NODE_API_MODULE(u2pl, Init)

}  // namespace u2pl::addon
