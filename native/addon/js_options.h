// Reading option objects passed from JS; errors name the option.
#pragma once

#include <string>
#include <vector>

#include <napi.h>

namespace u2pl::addon {

bool OptBool(const Napi::Object& o, const char* key, bool fallback, const char* what = "option");
int64_t OptInt(const Napi::Object& o, const char* key, int64_t fallback, const char* what = "option");
double OptDouble(const Napi::Object& o, const char* key, double fallback, const char* what = "option");
std::string OptString(const Napi::Object& o, const char* key, const std::string& fallback, const char* what = "option");
// An array of numbers; empty when the key is absent.
std::vector<double> OptNumbers(const Napi::Object& o, const char* key, const char* what = "option");
// A required object argument.
Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* fn);

}  // namespace u2pl::addon
