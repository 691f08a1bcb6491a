// Turns C++ exceptions into JS Errors that keep LibTorch's own text.
#pragma once

#include <exception>
#include <string>

#include <napi.h>

namespace u2pl::addon {

// The message of the exception in flight: c10::Error without its C++ backtrace, else what().
std::string CurrentExceptionMessage(std::exception_ptr error);

// Runs fn; a C++ exception becomes a thrown JS Error with the same message.
template <typename Fn>
auto GuardJs(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw Napi::Error::New(env, CurrentExceptionMessage(std::current_exception()));
  }
}

}  // namespace u2pl::addon
