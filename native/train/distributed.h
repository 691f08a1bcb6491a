// Data parallelism over PyTorch's distributed engine (c10d): every collective the trainer needs,
// behind one small interface, so that the rest knows nothing of c10d (whose C++ API moved between
// LibTorch 1.13 and 2.x). Gloo on CPU; NCCL with a CUDA LibTorch. Rendezvous through a TCPStore
// served by rank 0 at master_addr:master_port, or by torchrun's agent (agent_store).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::train {

struct DistributedOptions {
  std::string backend = "gloo";  // gloo | nccl
  int rank = 0, world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun (TORCHELASTIC_USE_AGENT_STORE=True) serves the store in its agent: every rank is a
  // client, and keys live under store_prefix (one per restart attempt, as torch's own workers do).
  bool agent_store = false;
  std::string store_prefix;
  // Where the collectives run: NCCL needs the rank's GPU ("cuda:N"); Gloo runs on the CPU.
  std::string device = "cpu";
  // A collective that waits longer fails (a rank that died or hangs ends the job with an error).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// An asynchronous collective in flight.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void Wait() = 0;
};

// Tensors may live anywhere: each collective stages those not on the communicator's device (a
// copy there and back), so callers never need to know that NCCL takes only CUDA tensors.
class Communicator {
 public:
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Sums the tensors over the ranks, in place.
  virtual void AllReduceSum(std::vector<at::Tensor>& tensors) = 0;
  // The same, returning at once (for gradients while the backward goes on).
  virtual std::unique_ptr<PendingCollective> AllReduceSumAsync(at::Tensor tensor) = 0;
  // Every rank's tensor (all of one shape), in rank order.
  virtual std::vector<at::Tensor> AllGather(const at::Tensor& tensor) = 0;
  virtual void Broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual void Barrier() = 0;

  // Rows of different counts on each rank: counts gathered, rows padded to the largest count,
  // gathered, trimmed. Returns each rank's rows in rank order.
  std::vector<at::Tensor> AllGatherRows(const at::Tensor& rows);

 protected:
  Communicator(int rank, int world_size) : rank_(rank), world_size_(world_size) {}

 private:
  int rank_, world_size_;
};

// The backends this build can create ("gloo" when LibTorch and the gloo headers allow; "nccl"
// with a CUDA LibTorch that has it).
std::vector<std::string> AvailableBackends();

// Joins the process group (blocks until every rank has joined or the timeout passes).
std::unique_ptr<Communicator> CreateCommunicator(const DistributedOptions& options);

}  // namespace u2pl::train
