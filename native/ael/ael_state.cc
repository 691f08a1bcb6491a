#include "ael/ael_state.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace u2pl::ael {

AelState::AelState(const AelStateOptions& options, at::Generator init) : options_(options) {
  TORCH_CHECK(options.classes > 0, "AEL: classes must be positive");
  for (int64_t c : options.paste_classes)
    TORCH_CHECK(c >= 0 && c < options.classes, "AEL: copy-paste class ", c, " is not in [0, ", options.classes, ")");
  kappa_ = at::rand({3, options.classes}, init, at::TensorOptions().dtype(at::kFloat));
  bank_ = at::zeros({options.classes, std::max<int64_t>(options.unlabeled, 0)}, at::TensorOptions().dtype(at::kFloat));
}

at::Tensor PasteClassProbabilities(const at::Tensor& kappa_row, const std::vector<int64_t>& paste_classes) {
  at::Tensor idx = at::tensor(paste_classes, at::TensorOptions().dtype(at::kLong));
  return at::softmax(at::sqrt(1 - kappa_row.to(at::kDouble).index_select(0, idx)), 0);
}

at::Tensor MixClassProbabilities(const at::Tensor& kappa_row) { return at::softmax(1 - kappa_row.to(at::kDouble), 0); }

AelPlan AelState::Plan(uint64_t seed) const {
  const int64_t loaded = options_.unlabeled_batch;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor kappa = confidence();
  AelPlan plan;
  if (!options_.paste_classes.empty()) {
    at::Tensor draws = at::multinomial(PasteClassProbabilities(kappa, options_.paste_classes), options_.paste_draws, true, gen);
    for (int64_t i = 0; i < draws.size(0); ++i) plan.paste_classes.push_back(options_.paste_classes[draws[i].item<int64_t>()]);
    std::sort(plan.paste_classes.begin(), plan.paste_classes.end());
    plan.paste_classes.erase(std::unique(plan.paste_classes.begin(), plan.paste_classes.end()), plan.paste_classes.end());
  }
  if (loaded <= 0) return plan;
  if (options_.use_one_unlabeled) {
    // One image of each replica batch: the reference's coin flip between its two, u > 0.5 keeping the first.
    const int64_t group = std::max<int64_t>(1, std::min(options_.replica_batch, loaded));
    for (int64_t first = 0; first < loaded; first += group) {
      const int64_t size = std::min(group, loaded - first);
      const double u = at::rand({1}, gen, at::TensorOptions().dtype(at::kDouble)).item<double>();
      plan.keep.push_back(first + (size == 2 ? (u > 0.5 ? 0 : 1) : std::min<int64_t>(static_cast<int64_t>(u * size), size - 1)));
    }
  } else {
    for (int64_t i = 0; i < loaded; ++i) plan.keep.push_back(i);
  }
  // Each kept image's CutMix partner: with ACM a class drawn from kappa and an image the bank says
  // showed it (any image when none did); without ACM (random boxes) any image, and no class (-1).
  const at::Tensor p = MixClassProbabilities(kappa);
  for (size_t k = 0; k < plan.keep.size(); ++k) {
    const int64_t c = options_.adaptive_cutmix ? at::multinomial(p, 1, true, gen).item<int64_t>() : -1;
    plan.mix_classes.push_back(c);
    const at::Tensor seen = c >= 0 ? bank_[c].nonzero().reshape({-1}) : at::empty({0}, at::kLong);
    const int64_t n = seen.size(0) > 0 ? seen.size(0) : options_.unlabeled;
    const int64_t pick = at::randint(n, {1}, gen, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
    plan.bank_images.push_back(seen.size(0) > 0 ? seen[pick].item<int64_t>() : pick);
  }
  return plan;
}

at::Tensor AelState::confidence() const { return kappa_[0]; }

void AelState::UpdateConfidence(const ClassConfidence& m) {
  const float mu = static_cast<float>(options_.momentum);
  at::Tensor mean = m.mean.to(at::kCPU, at::kFloat).unsqueeze(0);
  at::Tensor updated = kappa_ * mu + mean * (1 - mu);
  if (!options_.absent_classes_decay) updated = at::where(m.present.to(at::kCPU).unsqueeze(0), updated, kappa_);
  kappa_ = updated.contiguous();
}

void AelState::UpdateBank(int64_t image, const std::vector<bool>& present) {
  TORCH_CHECK(image >= 0 && image < bank_.size(1), "AEL: cutmix bank image ", image, " is not in [0, ", bank_.size(1), ")");
  TORCH_CHECK(static_cast<int64_t>(present.size()) == options_.classes, "AEL: cutmix bank update needs one flag per class");
  float* col = bank_.data_ptr<float>() + image;
  for (int64_t c = 0; c < options_.classes; ++c) col[c * bank_.size(1)] = present[c] ? 1.f : 0.f;
}

void AelState::Restore(const at::Tensor& kappa, const at::Tensor& bank) {
  TORCH_CHECK(kappa.sizes() == kappa_.sizes() && bank.sizes() == bank_.sizes(), "AEL: the state to restore has other shapes");
  kappa_ = kappa.to(at::kCPU, at::kFloat).contiguous().clone();
  bank_ = bank.to(at::kCPU, at::kFloat).contiguous().clone();
}

void AelState::Save(io::Value& root) const {
  root.set("class_criterion", io::Value::Tensor(kappa_.clone()));
  root.set("cutmix_bank", io::Value::Tensor(bank_.clone()));
}

void AelState::Load(const io::ValuePtr& root, const std::string& source) {
  if (auto k = root->get("class_criterion")) {
    TORCH_CHECK(k->is(io::Value::Kind::Tensor) && k->tensor.dim() == 2 && k->tensor.size(1) == options_.classes, source,
                ": class_criterion must be a 3 x ", options_.classes, " tensor");
    at::Tensor t = k->tensor.to(at::kFloat);
    kappa_ = (t.size(0) == 3 ? t : t[0].unsqueeze(0).expand({3, options_.classes})).contiguous().clone();
  }
  if (auto g = root->get("cutmix_bank")) {
    TORCH_CHECK(g->is(io::Value::Kind::Tensor) && g->tensor.sizes() == bank_.sizes(), source, ": cutmix_bank must be ",
                options_.classes, " x ", bank_.size(1), " (classes x unlabeled images), got ",
                g->is(io::Value::Kind::Tensor) ? g->tensor.sizes() : at::IntArrayRef{});
    bank_ = g->tensor.to(at::kFloat).contiguous().clone();
  }
}

}  // namespace u2pl::ael
