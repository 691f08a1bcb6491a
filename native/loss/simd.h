// The hot loss loops are compiled twice: for the baseline x86-64 ISA (SSE2) and for AVX2, chosen
// at run time as LibTorch does for its own kernels. Both copies do the same float operations in
// the same order (the AVX2 copy has no FMA), so results do not depend on the CPU.
// U2PL_DISABLE_AVX2=1 in the environment keeps the baseline copy (read once, at first use).
#pragma once

#include <cstdlib>
#include <cstring>

namespace u2pl::loss {

// The kernel templates are force-inlined into each copy, so they take the copy's instruction set.
#define U2PL_FORCE_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define U2PL_HAVE_AVX2_COPY 1
#define U2PL_TARGET_AVX2 __attribute__((target("avx2")))
inline bool UseAvx2Copy() {
  static const bool use = [] {
    const char* off = std::getenv("U2PL_DISABLE_AVX2");
    return __builtin_cpu_supports("avx2") && !(off && *off && std::strcmp(off, "0") != 0);
  }();
  return use;
}
#else
#define U2PL_HAVE_AVX2_COPY 0
inline bool UseAvx2Copy() { return false; }
#endif

// W floats in one register (GCC/Clang vector extension): 4 for SSE, 8 for AVX2. Used only as
// locals: passing them by value between differently compiled functions would change the ABI.
template <int W>
struct FloatLanes {
  typedef float type __attribute__((vector_size(4 * W)));
};

}  // namespace u2pl::loss
