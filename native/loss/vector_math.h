// Elementwise maths that the compiler vectorises inside the fused loss loops (libm's expf is a
// call per element and stops vectorisation). Needs -fno-trapping-math so that the clamps
// become blends (set for the core library in CMakeLists.txt and binding.gyp).
#pragma once

#include <cstdint>
#include <cstring>

#include "loss/simd.h"

namespace u2pl::loss {

// exp(x) for float, Cephes' polynomial: relative error < 1e-7 on [-87.3, 88]; inputs outside
// are clamped (e^-87.3 ~ 1e-38 stands in for 0, which no softmax sum can tell apart).
U2PL_FORCE_INLINE float Exp(float x) {
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.0f ? 88.0f : x;
  const float k = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x / ln 2)
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;           // x - k ln 2, in two parts
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

}  // namespace u2pl::loss
