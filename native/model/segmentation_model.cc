#include "model/segmentation_model.h"

namespace u2pl::model {

SegmentationModelImpl::SegmentationModelImpl(const ModelOptions& options) : options_(options) {
  encoder = register_module("encoder", ResNet(options.encoder));
  DecoderOptions d;
  d.in_planes = encoder->out_channels();
  d.low_level_planes = encoder->low_level_channels();
  d.num_classes = options.num_classes;
  d.inner_planes = options.inner_planes;
  d.head_planes = options.head_planes;
  d.dilations = options.dilations;
  d.rep_head = options.rep_head;
  d.dropout = options.dropout;
  decoder = register_module("decoder", DeepLabV3PlusDecoder(d));
  if (options.aux) {
    const int64_t planes = options.aux_planes > 0 ? options.aux_planes : encoder->layer3_channels();
    if (planes != encoder->layer3_channels())
      throw std::invalid_argument("net.aux_loss.aux_plane is " + std::to_string(planes) + " but layer3 of this encoder has " +
                                  std::to_string(encoder->layer3_channels()) + " channels");
    auxor = register_module("auxor", AuxHead(planes, options.num_classes, options.dropout, options.head_planes));
  }
}

ModelOutput SegmentationModelImpl::forward(const torch::Tensor& images, bool pred_only) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "model input must be N x 3 x H x W, got ", images.sizes());
  TORCH_CHECK(!pred_only || !is_training(), "a prediction-only pass must run in eval mode (train mode updates every head's BN statistics)");
  ResNetFeatures f = encoder->forward(images);
  DecoderOutput d = decoder->forward(f.x1, f.x4, !pred_only);
  ModelOutput out;
  out.pred = d.pred;
  out.rep = d.rep;
  if (auxor && !pred_only) out.aux = auxor->forward(f.x3);
  return out;
}

}  // namespace u2pl::model
