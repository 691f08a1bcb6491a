// Scoped autocast (mixed precision) for one device type, across LibTorch 1.13 and 2.x APIs.
// Autocast state is thread-local: open the scope on the thread that runs the work.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace u2pl::util {

class AutocastScope {
 public:
  // dtype Undefined leaves autocast off (the scope then does nothing).
  AutocastScope(c10::DeviceType device, c10::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false;
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Undefined;
};

}  // namespace u2pl::util
