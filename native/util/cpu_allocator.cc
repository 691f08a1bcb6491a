#include "util/cpu_allocator.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

namespace u2pl::util {
namespace {

constexpr size_t kMinCached = size_t{256} << 10;
constexpr size_t kAlignment = 64;  // LibTorch's CPU alignment (c10::gAlignment)

// Sizes rounded up to an eighth of their power of two, so that the buffers of one step's shapes
// fall into few classes while a block wastes at most 12.5 %.
size_t SizeClass(size_t n) {
  const int shift = 63 - __builtin_clzll(n) - 3;
  const size_t step = size_t{1} << shift;
  return (n + step - 1) & ~(step - 1);
}

int64_t CacheLimit() {
  const char* mb = std::getenv("U2PL_CPU_CACHE_MB");
  return (mb && *mb ? std::stoll(mb) : 4096) << 20;
}

// c10::Allocator::allocate is const up to LibTorch 2.2 and not after; the base matches either.
constexpr bool kConstAllocate = std::is_same_v<decltype(&c10::Allocator::allocate), c10::DataPtr (c10::Allocator::*)(size_t) const>;

template <bool Const, typename Base = c10::Allocator>  // partial specialisations: only the used one is instantiated
class AllocatorBase;

template <typename Base>
class AllocatorBase<true, Base> : public Base {
 public:
  c10::DataPtr allocate(size_t n) const override { return Allocate(n); }

 protected:
  virtual c10::DataPtr Allocate(size_t n) const = 0;
};

template <typename Base>
class AllocatorBase<false, Base> : public Base {
 public:
  c10::DataPtr allocate(size_t n) override { return Allocate(n); }

 protected:
  virtual c10::DataPtr Allocate(size_t n) const = 0;
};

class CachingCpuAllocator final : public AllocatorBase<kConstAllocate> {
 public:
  // LibTorch >= 2.3 asks allocators to copy (no override keyword: older ones have no such member).
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

 protected:
  c10::DataPtr Allocate(size_t n) const override {
    const size_t size = n < kMinCached ? n : SizeClass(n);
    void* p = nullptr;
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= static_cast<int64_t>(size);
        ++hits_;
      }
    }
    if (p == nullptr) {
      if (posix_memalign(&p, kAlignment, size > 0 ? size : kAlignment) != 0) {
        TORCH_CHECK(false, "u2pl: out of memory allocating ", n, " bytes for a CPU tensor");
      }
      if (size >= kMinCached) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++misses_;
      }
    }
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[p] = size;
      allocated_ += static_cast<int64_t>(size);
    }
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }

 public:
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

  static void Free(void* p) {
    if (p == nullptr) return;
    CachingCpuAllocator& self = Instance();
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.sizes_.find(p);
      if (it != self.sizes_.end()) {
        const size_t size = it->second;
        self.sizes_.erase(it);
        self.allocated_ -= static_cast<int64_t>(size);
        if (self.cached_ + static_cast<int64_t>(size) <= self.limit_) {
          self.free_[size].push_back(p);
          self.cached_ += static_cast<int64_t>(size);
          return;
        }
      }
    }
    std::free(p);
  }

  static CachingCpuAllocator& Instance() {
    static CachingCpuAllocator* instance = new CachingCpuAllocator();  // never destroyed: tensors may outlive statics
    return *instance;
  }

  CpuAllocatorStats Stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    CpuAllocatorStats s;
    s.cached_bytes = cached_;
    s.allocated_bytes = allocated_;
    s.hits = hits_;
    s.misses = misses_;
    return s;
  }

  void Empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  CachingCpuAllocator() : limit_(CacheLimit()) {}

  mutable std::mutex mutex_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;
  mutable std::unordered_map<void*, size_t> sizes_;
  mutable int64_t cached_ = 0, allocated_ = 0, hits_ = 0, misses_ = 0;
  int64_t limit_;
};

std::atomic<bool> installed{false};

}  // namespace

void InstallCachingCpuAllocator() {
  const char* choice = std::getenv("U2PL_CPU_ALLOCATOR");
  if (choice && std::string(choice) == "system") return;
  if (installed.exchange(true)) return;
  c10::SetCPUAllocator(&CachingCpuAllocator::Instance(), /*priority=*/1);
}

CpuAllocatorStats GetCpuAllocatorStats() {
  CpuAllocatorStats s = CachingCpuAllocator::Instance().Stats();
  s.installed = installed.load() && c10::GetCPUAllocator() == &CachingCpuAllocator::Instance();
  return s;
}

void EmptyCpuAllocatorCache() { CachingCpuAllocator::Instance().Empty(); }

}  // namespace u2pl::util
