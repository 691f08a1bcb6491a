// Adaptive copy-paste (ACP) of the AEL variant (u2pl-ael-method.md A4.2): into each labeled image,
// the pixels of its partner sample whose label is one of the step's chosen classes, image and label
// together; nothing else changes.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace u2pl::ael {

// images B x 3 x H x W (float) and labels B x H x W (any integer type) are changed in place;
// partner_images / partner_labels have the same shapes; has_partner[b] false leaves image b as it
// is. Pixels whose partner label is not in `classes` (255, crop padding of another class, ...) are
// never pasted. Returns the number of pasted pixels.
int64_t CopyPaste(at::Tensor& images, at::Tensor& labels, const at::Tensor& partner_images, const at::Tensor& partner_labels,
                  const std::vector<bool>& has_partner, const std::vector<int64_t>& classes);

// The same in plain ATen ops (where / isin), what the loop above is tested against.
int64_t CopyPasteReference(at::Tensor& images, at::Tensor& labels, const at::Tensor& partner_images, const at::Tensor& partner_labels,
                           const std::vector<bool>& has_partner, const std::vector<int64_t>& classes);

// Q12 [Q]: the reference decides that a partner exists when its label map sums to non-zero (a
// partner made only of class 0 counts as absent).
std::vector<bool> PartnerPresentByLabelSum(const at::Tensor& partner_labels);

}  // namespace u2pl::ael
