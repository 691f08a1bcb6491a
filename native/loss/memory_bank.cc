#include "loss/memory_bank.h"

#include <cstdint>

#include <ATen/ATen.h>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace u2pl::loss {
namespace {

// Negatives are read as random 1 KB rows of a 30-50 MB class bank: with 4 KB pages nearly every
// row is a TLB miss. Ask for transparent huge pages (Linux, where THP is "madvise") before the
// storage is first written; elsewhere, or if refused, this changes nothing.
void AdviseHugePages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t end = begin + static_cast<uintptr_t>(t.nbytes());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  if (t.is_cpu() && end > first + kHuge) madvise(reinterpret_cast<void*>(first), (end - first) & ~(kHuge - 1), MADV_HUGEPAGE);
#endif
}

}  // namespace

MemoryBank::MemoryBank(std::vector<int64_t> capacities, int64_t dim, at::TensorOptions options)
    : capacity_(std::move(capacities)), dim_(dim), options_(options) {
  for (int64_t c : capacity_) TORCH_CHECK(c > 0, "memory bank capacities must be positive, got ", c);
  size_.assign(capacity_.size(), 0);
  head_.assign(capacity_.size(), 0);
  storage_.resize(capacity_.size());
}

void MemoryBank::Append(int64_t c, const at::Tensor& keys_in) {
  TORCH_CHECK(c >= 0 && c < num_classes(), "memory bank has no class ", c);
  TORCH_CHECK(keys_in.dim() == 2 && keys_in.size(1) == dim_, "memory bank keys must be n x ", dim_, ", got ", keys_in.sizes());
  const int64_t n = keys_in.size(0);
  if (n == 0) return;
  const int64_t cap = capacity_[c];
  if (!storage_[c].defined()) {
    storage_[c] = at::empty({cap, dim_}, options_);
    AdviseHugePages(storage_[c]);
  }
  at::Tensor keys = keys_in.detach().to(options_);
  if (n >= cap) {  // only the newest cap keys of this block survive
    storage_[c].copy_(keys.slice(0, n - cap));
    head_[c] = 0;
    size_[c] = cap;
    return;
  }
  const int64_t tail = (head_[c] + size_[c]) % cap;
  const int64_t first = std::min(n, cap - tail);
  storage_[c].slice(0, tail, tail + first).copy_(keys.slice(0, 0, first));
  if (first < n) storage_[c].slice(0, 0, n - first).copy_(keys.slice(0, first));
  if (size_[c] + n > cap) {
    head_[c] = (tail + n) % cap;  // the oldest entry is the one after the newest written
    size_[c] = cap;
  } else {
    size_[c] += n;
  }
}

at::Tensor MemoryBank::PhysicalIndex(int64_t c, const at::Tensor& logical_index) const {
  TORCH_CHECK(size_.at(c) > 0, "memory bank class ", c, " is empty");
  return logical_index.add(head_[c]).remainder_(capacity_[c]).to(storage_[c].device());
}

at::Tensor MemoryBank::Gather(int64_t c, const at::Tensor& logical_index) const {
  return storage_[c].index_select(0, PhysicalIndex(c, logical_index));
}

at::Tensor MemoryBank::Ordered(int64_t c) const {
  if (size_.at(c) == 0) return at::empty({0, dim_}, options_);
  return Gather(c, at::arange(size_[c], at::TensorOptions().dtype(at::kLong)));
}

void MemoryBank::Restore(int64_t c, const at::Tensor& keys) {
  TORCH_CHECK(c >= 0 && c < num_classes(), "memory bank has no class ", c);
  size_[c] = 0;
  head_[c] = 0;
  Append(c, keys);
}

void MemoryBank::Clear() {
  for (size_t c = 0; c < capacity_.size(); ++c) {
    size_[c] = 0;
    head_[c] = 0;
  }
}

}  // namespace u2pl::loss
