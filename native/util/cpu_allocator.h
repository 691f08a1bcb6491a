// A caching allocator for LibTorch's CPU tensors. Every training step allocates and frees the
// same few hundred activation and gradient buffers; with malloc each large one is a fresh mmap
// whose pages the kernel zeroes on first touch (~45,000 page faults per camvid-small step). Here
// freed blocks of 256 KiB and more are kept by size class and handed out again, so a steady step
// allocates no new pages. Smaller blocks go to malloc as before.
#pragma once

#include <cstdint>

namespace u2pl::util {

struct CpuAllocatorStats {
  bool installed = false;
  int64_t cached_bytes = 0;     // free blocks held for reuse
  int64_t allocated_bytes = 0;  // blocks handed out and not yet freed (caching sizes only)
  int64_t hits = 0, misses = 0;
};

// Installs the caching allocator as LibTorch's CPU allocator (once; U2PL_CPU_ALLOCATOR=system
// keeps LibTorch's). Keeps at most U2PL_CPU_CACHE_MB of free blocks (default 4096).
void InstallCachingCpuAllocator();

CpuAllocatorStats GetCpuAllocatorStats();

// Frees every cached block (e.g. after a run, or when the shapes change for good).
void EmptyCpuAllocatorCache();

}  // namespace u2pl::util
