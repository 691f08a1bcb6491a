// Class-wise FIFO queues of teacher embeddings (§10.4), as ring buffers on the compute device.
// Logical order is oldest -> newest; sampling and saving use that order, so a ring buffer behaves
// exactly like the reference's concatenate-and-truncate queues.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::loss {

class MemoryBank {
 public:
  MemoryBank(std::vector<int64_t> capacities, int64_t dim, at::TensorOptions options);

  int64_t num_classes() const { return static_cast<int64_t>(capacity_.size()); }
  int64_t dim() const { return dim_; }
  int64_t capacity(int64_t c) const { return capacity_.at(c); }
  int64_t size(int64_t c) const { return size_.at(c); }

  // Appends keys (n x dim) to class c, keeping only the newest capacity(c) entries.
  void Append(int64_t c, const at::Tensor& keys);
  // Rows at logical positions (0 = oldest) of class c.
  at::Tensor Gather(int64_t c, const at::Tensor& logical_index) const;
  // Physical rows of Storage(c) for logical positions (0 = oldest).
  at::Tensor PhysicalIndex(int64_t c, const at::Tensor& logical_index) const;
  // The ring buffer of class c (capacity(c) x dim; only PhysicalIndex rows are meaningful).
  const at::Tensor& Storage(int64_t c) const { return storage_.at(c); }
  // Contents of class c, oldest first (size(c) x dim).
  at::Tensor Ordered(int64_t c) const;
  // Replaces the contents of class c (oldest first), e.g. from a checkpoint.
  void Restore(int64_t c, const at::Tensor& keys);
  void Clear();

 private:
  std::vector<int64_t> capacity_, size_, head_;
  std::vector<at::Tensor> storage_;  // allocated on first append
  int64_t dim_;
  at::TensorOptions options_;
};

}  // namespace u2pl::loss
