// Times the U2PL unsupervised + contrastive losses (forward + backward) on random inputs of the
// given shapes with full memory banks, for the kernels or the composite reference.
#pragma once

#include <vector>

#include <cstdint>

namespace u2pl::loss {

struct LossBenchmarkSpec {
  int64_t labeled = 2, unlabeled = 2, classes = 21;
  int64_t height = 321, width = 321;  // prediction size (upsampled)
  int64_t rep_height = 81, rep_width = 81, rep_dim = 256;
  int64_t warmup = 1, runs = 5;
  bool composite = false;
  uint64_t seed = 0;
};

// Seconds per run.
std::vector<double> TimeU2plLosses(const LossBenchmarkSpec& spec);

}  // namespace u2pl::loss
