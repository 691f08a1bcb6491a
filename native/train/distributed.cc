#include "train/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include <ATen/ATen.h>

#if defined(U2PL_WITH_GLOO) || defined(U2PL_WITH_NCCL)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef U2PL_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef U2PL_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace u2pl::train {

std::vector<at::Tensor> Communicator::AllGatherRows(const at::Tensor& rows) {
  at::Tensor count = at::full({1}, rows.size(0), rows.options().dtype(at::kLong));
  std::vector<at::Tensor> counts = AllGather(count);
  int64_t most = 0;
  std::vector<int64_t> n;
  for (const auto& c : counts) {
    n.push_back(c.item<int64_t>());
    most = std::max(most, n.back());
  }
  std::vector<int64_t> shape = rows.sizes().vec();
  shape[0] = most;
  if (most == 0) return std::vector<at::Tensor>(n.size(), at::empty(shape, rows.options()));  // nothing anywhere
  at::Tensor padded = at::zeros(shape, rows.options());
  if (rows.size(0) > 0) padded.slice(0, 0, rows.size(0)).copy_(rows);
  std::vector<at::Tensor> all = AllGather(padded);
  for (size_t r = 0; r < all.size(); ++r) all[r] = all[r].slice(0, 0, n[r]);
  return all;
}

#if defined(U2PL_WITH_GLOO) || defined(U2PL_WITH_NCCL)
namespace {

// Gloo's wait blocks until the collective is done, bounded by the timeout. NCCL's wait() without a
// timeout only orders the current stream after the collective (its own timeout, set in its options,
// still aborts a hung one); given a timeout it would poll from the host until the GPU finishes,
// stalling every SyncBN layer and gradient bucket.
void WaitFor(c10d::Work& work, std::optional<std::chrono::milliseconds> timeout) {
  if (timeout) work.wait(*timeout);
  else work.wait();
}

class PendingWork final : public PendingCollective {
 public:
  PendingWork(c10::intrusive_ptr<c10d::Work> work, std::optional<std::chrono::milliseconds> timeout)
      : work_(std::move(work)), timeout_(timeout) {}
  void Wait() override {
    if (work_) WaitFor(*work_, timeout_);
    work_.reset();
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::optional<std::chrono::milliseconds> timeout_;
};

// A collective that finished before it was returned (a staged one).
class DoneWork final : public PendingCollective {
 public:
  void Wait() override {}
};

// One c10d process group (ProcessGroupGloo or ProcessGroupNCCL); `wait_timeout` bounds each host
// wait (Gloo), or is empty where the group's own timeout does (NCCL, see WaitFor).
// Every tensor goes through Stage(): NCCL refuses CPU tensors ("Tensors must be CUDA and dense"),
// and the step's counters, the RNG states, the preflight verdict and the confusion matrices are
// CPU tensors; Gloo likewise gets CPU copies of device tensors.
template <typename Group>
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<Group> group, const DistributedOptions& o, at::Device device,
                   std::optional<std::chrono::milliseconds> wait_timeout)
      : Communicator(o.rank, o.world_size), group_(std::move(group)), timeout_(wait_timeout), device_(device) {}

  void AllReduceSum(std::vector<at::Tensor>& tensors) override {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{Stage(t)};
      WaitFor(*group_->allreduce(one), timeout_);
      Unstage(one[0], t);
    }
  }

  std::unique_ptr<PendingCollective> AllReduceSumAsync(at::Tensor tensor) override {
    if (!Staged(tensor)) {
      std::vector<at::Tensor> one{tensor};
      AllReduceSum(one);
      return std::make_unique<DoneWork>();
    }
    std::vector<at::Tensor> one{std::move(tensor)};
    return std::make_unique<PendingWork>(group_->allreduce(one), timeout_);
  }

  std::vector<at::Tensor> AllGather(const at::Tensor& tensor) override {
    // Gloo divides by the element count: an empty tensor would crash it (SIGFPE); its gather is known.
    if (tensor.numel() == 0) return std::vector<at::Tensor>(world_size(), tensor.clone());
    std::vector<at::Tensor> input{Stage(tensor)};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < world_size(); ++r) output[0].push_back(at::empty_like(input[0]));
    WaitFor(*group_->allgather(output, input), timeout_);
    for (auto& t : output[0]) t = t.to(tensor.device());
    return output[0];
  }

  void Broadcast(std::vector<at::Tensor>& tensors, int root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{Stage(t)};
      WaitFor(*group_->broadcast(one, o), timeout_);
      Unstage(one[0], t);
    }
  }

  // An all-reduce of one element on the device (c10d's NCCL barrier guesses the GPU from the rank),
  // read back so that the host waits too (NCCL's wait() only orders the device's stream).
  void Barrier() override {
    std::vector<at::Tensor> one{at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device_))};
    WaitFor(*group_->allreduce(one), timeout_);
    one[0].cpu();
  }

 private:
  // A tensor the backend can take as it is: on the device, contiguous.
  bool Staged(const at::Tensor& t) const { return t.device() == device_ && t.is_contiguous(); }
  at::Tensor Stage(const at::Tensor& t) const { return Staged(t) ? t : t.to(device_).contiguous(); }
  static void Unstage(const at::Tensor& staged, at::Tensor& t) {
    if (!staged.is_same(t)) t.copy_(staged);
  }

  c10::intrusive_ptr<Group> group_;
  std::optional<std::chrono::milliseconds> timeout_;
  at::Device device_;
};

}  // namespace
#endif

std::vector<std::string> AvailableBackends() {
  std::vector<std::string> out;
#ifdef U2PL_WITH_GLOO
  out.push_back("gloo");
#endif
#ifdef U2PL_WITH_NCCL
  out.push_back("nccl");
#endif
  return out;
}

std::unique_ptr<Communicator> CreateCommunicator(const DistributedOptions& o) {
  TORCH_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "distributed: rank ", o.rank, " is outside [0, ",
              o.world_size, ")");
  TORCH_CHECK(o.master_port > 0 && o.master_port < 65536, "distributed: MASTER_PORT ", o.master_port, " is not a port");
#if defined(U2PL_WITH_GLOO) || defined(U2PL_WITH_NCCL)
  at::Device device(o.device);
  if (device.is_cuda() && !device.has_index()) device = at::Device(at::kCUDA, 0);  // staging compares devices with their index
  TORCH_CHECK(o.backend != "nccl" || device.is_cuda(), "distributed: the nccl backend needs a CUDA device (runtime.device: cuda), got ", o.device);
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  // Under torchrun's agent store the agent serves it; else rank 0 does and waits for the others.
  so.isServer = o.rank == 0 && !o.agent_store;
  so.numWorkers = static_cast<std::size_t>(o.world_size);  // every rank counts itself in (the server waits for all)
  // Meeting the other ranks may take longer than a collective (processes start at different times):
  // the store waits at least five minutes, whatever dist_timeout_s bounds the collectives to.
  so.timeout = std::max<std::chrono::milliseconds>(o.timeout, std::chrono::minutes(5));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    const std::string what = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
    throw std::runtime_error("distributed: cannot meet the other ranks at " + o.master_addr + ":" + std::to_string(o.master_port) + " (" +
                             what + (o.agent_store ? "; TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent should serve this store" : "") + ")");
  }
  if (!o.store_prefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(o.store_prefix, store);
#endif
#ifdef U2PL_WITH_GLOO
  if (o.backend == "gloo") {
    auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
    // GLOO_SOCKET_IFNAME as in PyTorch; else loopback for one machine, or the interface that
    // resolves this host's name for several.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const bool local = o.master_addr == "127.0.0.1" || o.master_addr == "localhost";
    options->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                               : local          ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                                : c10d::ProcessGroupGloo::createDefaultDevice());
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, options);
    return std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(group, o, at::Device(at::kCPU), o.timeout);
  }
#endif
#ifdef U2PL_WITH_NCCL
  if (o.backend == "nccl") {
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = o.timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size, options);
    return std::make_unique<C10dCommunicator<c10d::ProcessGroupNCCL>>(group, o, device, std::nullopt);
  }
#endif
  std::string have;
  for (const auto& b : AvailableBackends()) have += (have.empty() ? "" : ", ") + b;
  throw std::invalid_argument("distributed backend '" + o.backend + "' is not in this build (it has: " + (have.empty() ? "none" : have) +
                              "); gloo needs a LibTorch with distributed support and the gloo headers (Debian: apt-get install libgloo-dev)");
}

}  // namespace u2pl::train
