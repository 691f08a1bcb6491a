#include "loss/percentile.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace u2pl::loss {
namespace {

struct Rank {
  int64_t lo;
  double frac;
};

Rank RankOf(int64_t n, double q) {
  TORCH_CHECK(q >= 0 && q <= 100, "percentile q must be in [0, 100], got ", q);
  TORCH_CHECK(n > 0, "percentile of an empty set");
  const double pos = q / 100.0 * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  return {lo, pos - static_cast<double>(lo)};
}

// Float CPU values: a radix select. A histogram of the top 12 bits of the order-preserving bit
// pattern (sign, exponent, 3 mantissa bits: 1/8 of an octave per bucket) gives each wanted rank's
// bucket in one parallel pass; a second pass copies out only those buckets, and nth_element
// orders the few values in them. No copy of the whole set, no sort.
constexpr int kBucketBits = 12;
constexpr int64_t kChunks = 8;  // fixed, so the work split does not depend on the thread count

inline uint32_t BucketOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // negatives below positives, both ascending
  return b >> (32 - kBucketBits);
}

// The elements of v where mask is true (mask == nullptr: all n), histogrammed by bucket.
class RadixSelector {
 public:
  static constexpr int64_t kBuckets = int64_t{1} << kBucketBits;

  RadixSelector(const float* v, const bool* mask, int64_t n) : v_(v), mask_(mask), n_(n), below_(kBuckets + 1, 0) {
    std::vector<int64_t> hist(kChunks * kBuckets, 0);
    at::parallel_for(0, kChunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t* h = hist.data() + c * kBuckets;
        for (int64_t i = n * c / kChunks; i < n * (c + 1) / kChunks; ++i)
          if (!mask || mask[i]) ++h[BucketOf(v[i])];
      }
    });
    for (int64_t b = 0; b < kBuckets; ++b) {
      int64_t count = 0;
      for (int64_t c = 0; c < kChunks; ++c) count += hist[c * kBuckets + b];
      below_[b + 1] = below_[b] + count;
    }
  }

  int64_t count() const { return below_[kBuckets]; }

  // The values of 0-based ranks (ascending order): each rank's bucket, then only those buckets'
  // values, ordered by nth_element.
  std::vector<float> ValuesAt(const std::vector<int64_t>& ranks) const {
    std::vector<int64_t> bucket(ranks.size());
    std::vector<int32_t> slot(kBuckets, -1);
    std::vector<std::vector<float>> members;
    for (size_t i = 0; i < ranks.size(); ++i) {
      bucket[i] = std::upper_bound(below_.begin(), below_.end(), ranks[i]) - below_.begin() - 1;
      if (slot[bucket[i]] < 0) {
        slot[bucket[i]] = static_cast<int32_t>(members.size());
        members.emplace_back();
        members.back().reserve(below_[bucket[i] + 1] - below_[bucket[i]]);
      }
    }
    for (int64_t i = 0; i < n_; ++i) {
      if (mask_ && !mask_[i]) continue;
      const int32_t s = slot[BucketOf(v_[i])];
      if (s >= 0) members[s].push_back(v_[i]);
    }
    std::vector<float> out(ranks.size());
    for (size_t i = 0; i < ranks.size(); ++i) {
      std::vector<float>& m = members[slot[bucket[i]]];
      const int64_t r = ranks[i] - below_[bucket[i]];
      std::nth_element(m.begin(), m.begin() + r, m.end());
      out[i] = m[r];
    }
    return out;
  }

 private:
  const float* v_;
  const bool* mask_;
  int64_t n_;
  std::vector<int64_t> below_;  // elements in the buckets below each bucket
};

// Percentiles qs of the selected elements, by linear interpolation between neighbouring ranks.
std::vector<at::Tensor> SelectOnHost(const float* v, const bool* mask, int64_t n, const std::vector<double>& qs,
                                     const at::TensorOptions& opts) {
  const RadixSelector selector(v, mask, n);
  const int64_t selected = selector.count();
  TORCH_CHECK(selected > 0 || mask == nullptr, "percentile over a mask that selects no element");
  std::vector<Rank> rank;
  std::vector<int64_t> wanted;
  for (double q : qs) {
    rank.push_back(RankOf(selected, q));
    wanted.push_back(rank.back().lo);
    wanted.push_back(std::min(rank.back().lo + 1, selected - 1));
  }
  const std::vector<float> value = selector.ValuesAt(wanted);
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < qs.size(); ++i) {
    const float lo = value[2 * i], hi = value[2 * i + 1];
    const bool between = rank[i].frac != 0 && rank[i].lo + 1 < selected;
    out.push_back(at::scalar_tensor(between ? lo + (hi - lo) * static_cast<float>(rank[i].frac) : lo, opts));
  }
  return out;
}

// Other devices and types: ATen's kthvalue (linear-time selection) per rank.
at::Tensor SelectWithAten(const at::Tensor& flat, double q) {
  const int64_t n = flat.numel();
  const Rank r = RankOf(n, q);
  at::Tensor v_lo = std::get<0>(at::kthvalue(flat, r.lo + 1));  // kthvalue is 1-based
  if (r.frac == 0 || r.lo + 1 >= n) return v_lo;
  at::Tensor v_hi = std::get<0>(at::kthvalue(flat, r.lo + 2));
  return v_lo + (v_hi - v_lo) * r.frac;
}

bool OnHost(const at::Tensor& t) { return t.is_cpu() && t.scalar_type() == at::kFloat; }

}  // namespace

at::Tensor Percentile(const at::Tensor& values, double q) {
  if (!OnHost(values)) return SelectWithAten(values.reshape({-1}), q);
  const at::Tensor flat = values.contiguous().reshape({-1});
  return SelectOnHost(flat.data_ptr<float>(), nullptr, flat.numel(), {q}, values.options())[0];
}

at::Tensor MaskedPercentile(const at::Tensor& values, const at::Tensor& mask, double q) {
  return MaskedPercentiles(values, mask, {q})[0];
}

std::vector<at::Tensor> MaskedPercentiles(const at::Tensor& values, const at::Tensor& mask, const std::vector<double>& qs) {
  TORCH_CHECK(values.sizes() == mask.sizes(), "percentile: values ", values.sizes(), " and mask ", mask.sizes(),
              " differ in shape");
  if (!OnHost(values) || !mask.is_cpu()) {
    const at::Tensor selected = values.masked_select(mask);
    TORCH_CHECK(selected.numel() > 0, "percentile over a mask that selects no element");
    std::vector<at::Tensor> out;
    for (double q : qs) out.push_back(SelectWithAten(selected, q));
    return out;
  }
  const at::Tensor v = values.contiguous(), m = mask.to(at::kBool).contiguous();
  return SelectOnHost(v.data_ptr<float>(), m.data_ptr<bool>(), v.numel(), qs, values.options());
}

}  // namespace u2pl::loss
