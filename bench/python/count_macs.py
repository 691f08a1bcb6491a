"""Multiply-adds of the network's passes, from the shapes its convolutions and matrix products see
(forward hooks on reference_net.Model, the same architecture as the addon's): what the bench divides
a step's time by for its achieved FLOP/s.

  python3 count_macs.py '{"net": {"depth": 50, ...}, "classes": 11, "size": 161}'

Prints one JSON object, for one image (multiply-adds grow with the batch):
  full: MACs of one train-mode forward (all heads), per module ("encoder.layer3", ...) and in total;
  pred: the same for an eval-mode pass that needs only the logits (no representation or aux head);
  convs: every convolution of the full pass: its module, input and weight shapes, stride, padding,
         dilation and MACs, for timing the layers one by one."""
import json
import sys

import torch
import torch.nn as nn

from reference_net import Model

args = json.loads(sys.argv[1])
net = dict(depth=50, num_classes=args["classes"], multi_grid=True, replace_stride_with_dilation=(False, False, True), dilations=(6, 12, 18))
net.update({k: tuple(v) if isinstance(v, list) else v for k, v in args.get("net", {}).items()})
size = args["size"]
# Shapes only matter: one image, on the GPU where there is one (an R101 at 513 x 513 is slow on a CPU).
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = Model(**net).eval().to(device)


def group(name):
    """The module a layer belongs to, at the depth the bench reports (encoder stem and layers, decoder parts)."""
    parts = name.split(".")
    if parts[0] == "encoder":
        return "encoder." + (parts[1] if parts[1].startswith("layer") else "stem")
    if parts[0] == "decoder":
        return "decoder." + parts[1]  # low_conv, aspp, head (ASPP's projection), classifier, representation
    return parts[0]


def count(skip=()):
    convs, per = [], {}
    handles = []
    for name, m in model.named_modules():
        if any(name.startswith(s) for s in skip):
            continue
        if isinstance(m, nn.Conv2d):
            def hook(mod, inp, out, name=name):
                x = inp[0]
                macs = out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
                per[group(name)] = per.get(group(name), 0) + macs
                convs.append({"module": name, "input": list(x.shape), "weight": list(mod.weight.shape), "stride": mod.stride[0],
                              "padding": mod.padding[0], "dilation": mod.dilation[0], "groups": mod.groups, "macs": macs})
            handles.append(m.register_forward_hook(hook))
        elif isinstance(m, nn.Linear):
            def hook(mod, inp, out, name=name):
                per[group(name)] = per.get(group(name), 0) + out.numel() * mod.in_features
            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device=device))
    for h in handles:
        h.remove()
    return {"modules": per, "total": sum(per.values())}, convs


full, convs = count()
# The logits alone: the representation and aux heads do not run (the addon's eval-mode passes).
pred, _ = count(skip=("decoder.representation", "auxor"))
print(json.dumps({"full": full, "pred": pred, "convs": convs}))
