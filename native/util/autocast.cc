#include "util/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace u2pl::util {
namespace {

// The device-type forms arrived in LibTorch 2.4 (and the per-device ones were deprecated then).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool Enabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
void SetEnabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
c10::ScalarType Dtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
void SetDtype(c10::DeviceType d, c10::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
bool Enabled(c10::DeviceType d) { return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled(); }
void SetEnabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CPU) at::autocast::set_cpu_enabled(on);
  else at::autocast::set_enabled(on);
}
c10::ScalarType Dtype(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
void SetDtype(c10::DeviceType d, c10::ScalarType t) {
  if (d == c10::DeviceType::CPU) at::autocast::set_autocast_cpu_dtype(t);
  else at::autocast::set_autocast_gpu_dtype(t);
}
#endif

}  // namespace

AutocastScope::AutocastScope(c10::DeviceType device, c10::ScalarType dtype) : device_(device) {
  if (dtype == c10::ScalarType::Undefined) return;
  active_ = true;
  previous_enabled_ = Enabled(device);
  previous_dtype_ = Dtype(device);
  SetDtype(device, dtype);
  SetEnabled(device, true);
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  SetEnabled(device_, previous_enabled_);
  SetDtype(device_, previous_dtype_);
  at::autocast::clear_cache();  // cached casts of the weights are stale after the next optimizer step
}

}  // namespace u2pl::util
