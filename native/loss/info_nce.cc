#include "loss/info_nce.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "loss/simd.h"

#ifdef U2PL_WITH_CUDA
#include "loss/cuda/loss_kernels_cuda.h"
#endif

namespace u2pl::loss {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr float kEps = 1e-8f;

// <a, k> and |k|^2 in eight lanes of partial sums (one 8-wide or two 4-wide vectors) added in a
// fixed tree, so both copies give the same bits.
template <int W>
U2PL_FORCE_INLINE void DotAndSquare(const float* a, const float* k, int64_t d, float& dot, float& sq) {
  using V = typename FloatLanes<W>::type;
  constexpr int kParts = 8 / W;
  V pd[kParts] = {}, ps[kParts] = {};
  int64_t c = 0;
  for (; c + 8 <= d; c += 8)
    for (int r = 0; r < kParts; ++r) {
      V av, kv;
      std::memcpy(&av, a + c + r * W, sizeof av);
      std::memcpy(&kv, k + c + r * W, sizeof kv);
      pd[r] += av * kv;
      ps[r] += kv * kv;
    }
  float ld[8], ls[8];
  std::memcpy(ld, pd, sizeof ld);
  std::memcpy(ls, ps, sizeof ls);
  for (; c < d; ++c) {
    ld[0] += a[c] * k[c];
    ls[0] += k[c] * k[c];
  }
  dot = ((ld[0] + ld[1]) + (ld[2] + ld[3])) + ((ld[4] + ld[5]) + (ld[6] + ld[7]));
  sq = ((ls[0] + ls[1]) + (ls[2] + ls[3])) + ((ls[4] + ls[5]) + (ls[6] + ls[7]));
}

// Bank rows are 1 KB at random places in a 30-120 MB bank: without a prefetch each row waits for
// memory. Whole rows, 8 ahead of use, into L2 (measured on EPYC: 38 ms without, 26 ms into L1
// 4 ahead, 20 ms into L2 8 ahead; further ahead or into L1 only slows it).
constexpr int64_t kPrefetchAhead = 8;
U2PL_FORCE_INLINE void PrefetchRow(const float* row, int64_t d) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < d * static_cast<int64_t>(sizeof(float)); b += 64) __builtin_prefetch(p + b, 0, 1);
}

struct TermArgs {
  const float* prototype;  // D
  const float* keys;       // N x D
  const int64_t* index;    // rows x K rows of keys
  int64_t begin;           // first anchor
  double inv_q;            // 1 / its anchor count
};

struct InfoNceArgs {
  const float* anchors;  // Q x D
  float* grad;           // Q x D
  int64_t k, d;
  double inv_t;
  std::vector<TermArgs> terms;
  std::vector<int32_t> term_of;  // per anchor
};

// Loss of one anchor and its gradient (scaled by inv_q) into g. rows[0] is the prototype,
// rows[1..k] its keys; rows[k+1..] (n_rows in all) are the next anchor's, to prefetch.
template <int W>
U2PL_FORCE_INLINE double ScoreAnchor(const float* a, const float* const* rows, int64_t k, int64_t n_rows, int64_t d,
                                     double inv_t, double inv_q, float* g, float* sim, float* den, double* e) {
  float a_sq = 0, unused = 0;
  DotAndSquare<W>(a, a, d, unused, a_sq);
  const float a_norm = std::sqrt(a_sq);
  double zmax = -INFINITY;
  for (int64_t j = 0; j <= k; ++j) {
    if (j + kPrefetchAhead < n_rows) PrefetchRow(rows[j + kPrefetchAhead], d);
    float dot, sq;
    DotAndSquare<W>(a, rows[j], d, dot, sq);
    den[j] = std::max(a_norm * std::sqrt(sq), kEps);
    sim[j] = dot / den[j];
    e[j] = sim[j] * inv_t;
    zmax = std::max(zmax, e[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j <= k; ++j) {
    e[j] = std::exp(e[j] - zmax);
    sum += e[j];
  }
  // d loss / d z_j = softmax_j - [j = 0]; d cos_j / d a = k_j / den_j - cos_j a / |a|^2 when
  // |a||k_j| > eps, k_j / eps otherwise.
  std::fill(g, g + d, 0.f);
  double radial = 0;
  for (int64_t j = 0; j <= k; ++j) {
    const double coef = (e[j] / sum - (j == 0 ? 1.0 : 0.0)) * inv_t * inv_q;
    const float wk = static_cast<float>(coef / den[j]);
    const float* kj = rows[j];
    for (int64_t c = 0; c < d; ++c) g[c] += wk * kj[c];
    if (den[j] > kEps) radial += coef * sim[j];
  }
  const float wa = a_sq > 0 ? static_cast<float>(radial / a_sq) : 0.f;
  for (int64_t c = 0; c < d; ++c) g[c] -= wa * a[c];
  return std::log(sum) + zmax - sim[0] * inv_t;
}

// Anchors [begin, end): losses[i] (already divided by the term's anchor count) and grad rows.
template <int W>
U2PL_FORCE_INLINE void ScoreAnchors(const InfoNceArgs& x, int64_t begin, int64_t end, double* losses) {
  const int64_t k = x.k, d = x.d;
  std::vector<const float*> rows(2 * (k + 1));
  std::vector<float> sim(k + 1), den(k + 1);
  std::vector<double> e(k + 1);
  for (int64_t i = begin; i < end; ++i) {
    int64_t n_rows = 0;
    for (int64_t next = i; next < std::min(i + 2, end); ++next) {
      const TermArgs& t = x.terms[x.term_of[next]];
      const int64_t* idx = t.index + (next - t.begin) * k;
      rows[n_rows++] = t.prototype;
      for (int64_t j = 0; j < k; ++j) rows[n_rows++] = t.keys + idx[j] * d;
    }
    const double inv_q = x.terms[x.term_of[i]].inv_q;
    losses[i] = inv_q * ScoreAnchor<W>(x.anchors + i * d, rows.data(), k, n_rows, d, x.inv_t, inv_q, x.grad + i * d,
                                       sim.data(), den.data(), e.data());
  }
}

void ScoreAnchorsBaseline(const InfoNceArgs& x, int64_t begin, int64_t end, double* losses) {
  ScoreAnchors<4>(x, begin, end, losses);
}
#if U2PL_HAVE_AVX2_COPY
U2PL_TARGET_AVX2 void ScoreAnchorsAvx2(const InfoNceArgs& x, int64_t begin, int64_t end, double* losses) {
  ScoreAnchors<8>(x, begin, end, losses);
}
#endif

class InfoNceFunction : public torch::autograd::Function<InfoNceFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& anchors_in, const at::Tensor& prototypes_in,
                            const std::vector<InfoNceTerm>& terms, double temperature) {
    const at::Tensor anchors = anchors_in.contiguous(), prototypes = prototypes_in.contiguous();
#ifdef U2PL_WITH_CUDA
    if (anchors.is_cuda()) {
      at::Tensor grad = at::zeros_like(anchors), total = at::zeros({}, anchors.options());
      for (const InfoNceTerm& t : terms) {
        auto [loss, g] = cuda::InfoNce(anchors.slice(0, t.begin, t.end), prototypes[t.prototype], t.keys, t.index, temperature);
        total += loss;
        grad.slice(0, t.begin, t.end).copy_(g);
      }
      ctx->save_for_backward({grad});
      return total;
    }
#endif
    const int64_t q = anchors.size(0), d = anchors.size(1);
    at::Tensor grad = at::empty_like(anchors);
    // InfoNceLoss made every term's keys and index contiguous.
    InfoNceArgs args{anchors.data_ptr<float>(), grad.data_ptr<float>(), terms[0].index.size(1), d, 1.0 / temperature, {},
                     std::vector<int32_t>(q)};
    for (size_t t = 0; t < terms.size(); ++t) {
      const InfoNceTerm& term = terms[t];
      args.terms.push_back({prototypes.data_ptr<float>() + term.prototype * d, term.keys.data_ptr<float>(),
                            term.index.data_ptr<int64_t>(), term.begin, 1.0 / static_cast<double>(term.end - term.begin)});
      std::fill(args.term_of.begin() + term.begin, args.term_of.begin() + term.end, static_cast<int32_t>(t));
    }
    std::vector<double> losses(q, 0.0);
    at::parallel_for(0, q, 1, [&](int64_t begin, int64_t end) {
#if U2PL_HAVE_AVX2_COPY
      if (UseAvx2Copy()) return ScoreAnchorsAvx2(args, begin, end, losses.data());
#endif
      ScoreAnchorsBaseline(args, begin, end, losses.data());
    });
    double total = 0;
    for (double l : losses) total += l;
    ctx->save_for_backward({grad});
    return at::scalar_tensor(total, anchors.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {ctx->get_saved_variables()[0] * grad_outputs[0], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The same maths through ATen (other devices and types), with the negatives gathered.
at::Tensor InfoNceTermAten(const at::Tensor& anchors, const at::Tensor& p, const at::Tensor& kv, const at::Tensor& index,
                           double temperature) {
  const int64_t q = anchors.size(0), k = index.size(1), d = anchors.size(1);
  at::Tensor negatives = kv.index_select(0, index.reshape({-1}).to(kv.device())).view({q, k, d}).to(anchors.scalar_type());
  at::Tensor a_norm = anchors.norm(2, 1, true);
  at::Tensor pos = at::mv(anchors, p).unsqueeze(1) / (a_norm * p.norm()).clamp_min(kEps);
  at::Tensor neg = at::bmm(negatives, anchors.unsqueeze(2)).squeeze(2) / (a_norm * negatives.norm(2, 2)).clamp_min(kEps);
  at::Tensor logits = at::cat({pos, neg}, 1) / temperature;
  return (at::logsumexp(logits, 1) - logits.select(1, 0)).mean();
}

}  // namespace

at::Tensor InfoNceLoss(const at::Tensor& anchors, const at::Tensor& prototypes_in, const std::vector<InfoNceTerm>& terms_in,
                       double temperature) {
  TORCH_CHECK(anchors.dim() == 2 && prototypes_in.dim() == 2 && prototypes_in.size(1) == anchors.size(1),
              "InfoNCE: anchors Q x D and prototypes P x D expected; got ", anchors.sizes(), " and ", prototypes_in.sizes());
  const int64_t q = anchors.size(0), d = anchors.size(1);
  const at::Tensor prototypes = prototypes_in.detach().to(anchors.scalar_type());
  std::vector<InfoNceTerm> terms;
  int64_t next = 0;
  for (const InfoNceTerm& t : terms_in) {
    TORCH_CHECK(t.begin == next && t.end > t.begin && t.end <= q,
                "InfoNCE: the terms must cover the anchor rows in order, each a non-empty range; got rows [", t.begin,
                ", ", t.end, ") after row ", next, " of ", q);
    TORCH_CHECK(t.prototype >= 0 && t.prototype < prototypes.size(0), "InfoNCE: no prototype ", t.prototype);
    TORCH_CHECK(t.keys.dim() == 2 && t.keys.size(1) == d && t.index.dim() == 2 && t.index.size(0) == t.end - t.begin &&
                    t.index.size(1) == terms_in[0].index.size(1),
                "InfoNCE: keys N x ", d, " and index ", t.end - t.begin, " x K (one K for all terms) expected; got ",
                t.keys.sizes(), " and ", t.index.sizes());
    // Checked only on the CPU: on a GPU the read would wait for it, and the contrastive loss's
    // indices are in range by construction (drawn below the bank's size).
    if (t.index.is_cpu())
      TORCH_CHECK(t.index.numel() == 0 || (t.index.min().item<int64_t>() >= 0 && t.index.max().item<int64_t>() < t.keys.size(0)),
                  "InfoNCE: index outside the ", t.keys.size(0), " keys");
    terms.push_back({t.begin, t.end, t.prototype, t.keys.detach().contiguous(), t.index.to(at::kLong).contiguous()});
    next = t.end;
  }
  TORCH_CHECK(next == q, "InfoNCE: the terms cover ", next, " of the ", q, " anchors");
  bool fused = anchors.is_cpu();
#ifdef U2PL_WITH_CUDA
  fused = fused || anchors.is_cuda();
#endif
  fused = fused && prototypes.device() == anchors.device();
  for (const InfoNceTerm& t : terms)
    fused = fused && t.keys.device() == anchors.device() && t.index.device() == anchors.device() && t.keys.scalar_type() == at::kFloat;
  if (fused && anchors.scalar_type() == at::kFloat && !terms.empty())
    return InfoNceFunction::apply(anchors, prototypes, terms, temperature);
  at::Tensor total = anchors.sum() * 0.0;
  for (const InfoNceTerm& t : terms)
    total = total + InfoNceTermAten(anchors.slice(0, t.begin, t.end), prototypes[t.prototype], t.keys, t.index, temperature);
  return total;
}

}  // namespace u2pl::loss
