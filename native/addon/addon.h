// Each file of the N-API glue registers its part of the module here.
#pragma once

#include <napi.h>

namespace u2pl::addon {

void RegisterInfo(Napi::Env env, Napi::Object exports);
void RegisterTensorOps(Napi::Env env, Napi::Object exports);
void RegisterCheckpoint(Napi::Env env, Napi::Object exports);
void RegisterModel(Napi::Env env, Napi::Object exports);
void RegisterLosses(Napi::Env env, Napi::Object exports);
void RegisterAel(Napi::Env env, Napi::Object exports);
void RegisterData(Napi::Env env, Napi::Object exports);
void RegisterTrainer(Napi::Env env, Napi::Object exports);
void RegisterDistributed(Napi::Env env, Napi::Object exports);
void RegisterCudaMemory(Napi::Env env, Napi::Object exports);

}  // namespace u2pl::addon
