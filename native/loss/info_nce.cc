#include "loss/info_nce.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef U2PL_WITH_CUDA
#include "loss/cuda/loss_kernels_cuda.h"
#endif

namespace u2pl::loss {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr float kEps = 1e-8f;

// <a, k> and |k|^2 with eight partial sums, so the loop vectorises without reassociating floats.
inline void DotAndSquare(const float* a, const float* k, int64_t d, float& dot, float& sq) {
  float pd[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ps[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= d; c += 8)
    for (int l = 0; l < 8; ++l) {
      pd[l] += a[c + l] * k[c + l];
      ps[l] += k[c + l] * k[c + l];
    }
  for (; c < d; ++c) {
    pd[0] += a[c] * k[c];
    ps[0] += k[c] * k[c];
  }
  dot = ((pd[0] + pd[1]) + (pd[2] + pd[3])) + ((pd[4] + pd[5]) + (pd[6] + pd[7]));
  sq = ((ps[0] + ps[1]) + (ps[2] + ps[3])) + ((ps[4] + ps[5]) + (ps[6] + ps[7]));
}

// Bank rows are 1 KB at random places in a 30-120 MB bank: without a prefetch each row waits for
// memory (measured 2x slower). Whole rows, a few ahead of use.
constexpr int64_t kPrefetchAhead = 4;
inline void PrefetchRow(const float* row, int64_t d) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < d * static_cast<int64_t>(sizeof(float)); b += 64) __builtin_prefetch(p + b);
}

// Loss of one anchor and its gradient (scaled by inv_q) into g. rows[0] is the prototype,
// rows[1..k] its keys; rows[k+1..] (n_rows in all) are the next anchor's, to prefetch.
double ScoreAnchor(const float* a, const float* const* rows, int64_t k, int64_t n_rows, int64_t d,
                   double inv_t, double inv_q, float* g, float* sim, float* den, double* z) {
  float a_sq = 0, unused = 0;
  DotAndSquare(a, a, d, unused, a_sq);
  const float a_norm = std::sqrt(a_sq);
  double zmax = -INFINITY;
  for (int64_t j = 0; j <= k; ++j) {
    if (j + kPrefetchAhead < n_rows) PrefetchRow(rows[j + kPrefetchAhead], d);
    float dot, sq;
    DotAndSquare(a, rows[j], d, dot, sq);
    den[j] = std::max(a_norm * std::sqrt(sq), kEps);
    sim[j] = dot / den[j];
    z[j] = sim[j] * inv_t;
    zmax = std::max(zmax, z[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j <= k; ++j) sum += std::exp(z[j] - zmax);
  const double lse = zmax + std::log(sum);
  // d loss / d z_j = softmax_j - [j = 0]; d cos_j / d a = k_j / den_j - cos_j a / |a|^2 when
  // |a||k_j| > eps, k_j / eps otherwise.
  std::fill(g, g + d, 0.f);
  double radial = 0;
  for (int64_t j = 0; j <= k; ++j) {
    const double coef = (std::exp(z[j] - lse) - (j == 0 ? 1.0 : 0.0)) * inv_t * inv_q;
    const float wk = static_cast<float>(coef / den[j]);
    const float* kj = rows[j];
    for (int64_t c = 0; c < d; ++c) g[c] += wk * kj[c];
    if (den[j] > kEps) radial += coef * sim[j];
  }
  const float wa = a_sq > 0 ? static_cast<float>(radial / a_sq) : 0.f;
  for (int64_t c = 0; c < d; ++c) g[c] -= wa * a[c];
  return lse - z[0];
}

class InfoNceFunction : public torch::autograd::Function<InfoNceFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& anchors_in, const at::Tensor& prototype_in,
                            const at::Tensor& keys_in, const at::Tensor& index_in, double temperature) {
#ifdef U2PL_WITH_CUDA
    if (anchors_in.is_cuda()) {
      auto [loss, grad] = cuda::InfoNce(anchors_in, prototype_in, keys_in, index_in, temperature);
      ctx->save_for_backward({grad});
      return loss;
    }
#endif
    const at::Tensor anchors = anchors_in.contiguous(), prototype = prototype_in.contiguous();
    const at::Tensor keys = keys_in.contiguous(), index = index_in.contiguous();
    const int64_t q = anchors.size(0), d = anchors.size(1), k = index.size(1);
    at::Tensor grad = at::empty_like(anchors);
    std::vector<double> losses(q);
    const float* a_all = anchors.data_ptr<float>();
    const float* p = prototype.data_ptr<float>();
    const float* kv = keys.data_ptr<float>();
    const int64_t* idx = index.data_ptr<int64_t>();
    float* g_all = grad.data_ptr<float>();
    const double inv_t = 1.0 / temperature, inv_q = 1.0 / static_cast<double>(q);
    at::parallel_for(0, q, 1, [&](int64_t begin, int64_t end) {
      std::vector<const float*> rows(2 * (k + 1));
      std::vector<float> sim(k + 1), den(k + 1);
      std::vector<double> z(k + 1);
      for (int64_t i = begin; i < end; ++i) {
        int64_t n_rows = 0;
        for (int64_t next = i; next < std::min(i + 2, end); ++next) {
          rows[n_rows++] = p;
          for (int64_t j = 0; j < k; ++j) rows[n_rows++] = kv + idx[next * k + j] * d;
        }
        losses[i] = ScoreAnchor(a_all + i * d, rows.data(), k, n_rows, d, inv_t, inv_q, g_all + i * d, sim.data(), den.data(),
                                z.data());
      }
    });
    double total = 0;
    for (double l : losses) total += l;
    ctx->save_for_backward({grad});
    return at::scalar_tensor(total * inv_q, anchors.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {ctx->get_saved_variables()[0] * grad_outputs[0], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor InfoNceLoss(const at::Tensor& anchors, const at::Tensor& prototype, const at::Tensor& keys,
                       const at::Tensor& index, double temperature) {
  TORCH_CHECK(anchors.dim() == 2 && keys.dim() == 2 && prototype.dim() == 1 && anchors.size(1) == keys.size(1) &&
                  prototype.size(0) == keys.size(1) && index.dim() == 2 && index.size(0) == anchors.size(0),
              "InfoNCE: anchors Q x D, prototype D, keys N x D, index Q x K expected; got ", anchors.sizes(), ", ",
              prototype.sizes(), ", ", keys.sizes(), ", ", index.sizes());
  TORCH_CHECK(index.numel() == 0 || (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < keys.size(0)),
              "InfoNCE: index outside the ", keys.size(0), " keys");
  const at::Tensor p = prototype.detach().to(anchors.scalar_type()), kv = keys.detach();
  bool fused = anchors.is_cpu();
#ifdef U2PL_WITH_CUDA
  fused = fused || (anchors.is_cuda() && kv.is_cuda());
#endif
  if (fused && anchors.scalar_type() == at::kFloat && kv.scalar_type() == at::kFloat && anchors.size(0) > 0)
    return InfoNceFunction::apply(anchors, p, kv, index.to(at::kLong), temperature);
  // Other devices and types: the same maths through ATen, with the negatives gathered.
  const int64_t q = anchors.size(0), k = index.size(1), d = anchors.size(1);
  at::Tensor negatives = kv.index_select(0, index.reshape({-1}).to(kv.device())).view({q, k, d}).to(anchors.scalar_type());
  at::Tensor a_norm = anchors.norm(2, 1, true);
  at::Tensor pos = at::mv(anchors, p).unsqueeze(1) / (a_norm * p.norm()).clamp_min(kEps);
  at::Tensor neg = at::bmm(negatives, anchors.unsqueeze(2)).squeeze(2) / (a_norm * negatives.norm(2, 2)).clamp_min(kEps);
  at::Tensor logits = at::cat({pos, neg}, 1) / temperature;
  return (at::logsumexp(logits, 1) - logits.select(1, 0)).mean();
}

}  // namespace u2pl::loss
