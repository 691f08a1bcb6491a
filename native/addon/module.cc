#include "addon/addon.h"

namespace u2pl::addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterInfo(env, exports);
  RegisterTensorOps(env, exports);
  RegisterCheckpoint(env, exports);
  RegisterModel(env, exports);
  RegisterLosses(env, exports);
  RegisterData(env, exports);
  RegisterTrainer(env, exports);
  return exports;
}

NODE_API_MODULE(u2pl, Init)

}  // namespace u2pl::addon
