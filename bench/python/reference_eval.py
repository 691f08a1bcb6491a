"""The reference's evaluation procedures (u2pl-method.md §13.3, §13.4) written plainly in torch, as
an independent check of the addon's predict(): whole image at several scales (sizes rounded), and
sliding windows of crop_h x crop_w at stride ceil(crop * rate), logits averaged where they overlap."""
import math

import torch
import torch.nn.functional as F


def _logits(model, x, size, flip):
    out = F.interpolate(model(x)["pred"], size=size, mode="bilinear", align_corners=True)
    if flip:
        out = out + F.interpolate(model(x.flip(3))["pred"], size=size, mode="bilinear", align_corners=True).flip(3)
    return out


@torch.no_grad()
def whole(model, image, scales=(1.0,), flip=False):
    h, w = image.shape[2:]
    total = 0
    for s in scales:
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        x = image if (nh, nw) == (h, w) else F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=True)
        logits = _logits(model, x, (nh, nw), flip)
        total = total + F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True)
    return total


@torch.no_grad()
def _slide(model, image, crop_h, crop_w, stride_rate, flip):
    h, w = image.shape[2:]
    pad_h, pad_w = max(crop_h - h, 0), max(crop_w - w, 0)
    padded = F.pad(image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    ph, pw = padded.shape[2:]
    stride_h, stride_w = math.ceil(crop_h * stride_rate), math.ceil(crop_w * stride_rate)
    rows = math.ceil((ph - crop_h) / stride_h) + 1
    cols = math.ceil((pw - crop_w) / stride_w) + 1
    total, count = None, torch.zeros(1, 1, ph, pw)
    for r in range(rows):
        for c in range(cols):
            top, left = min(r * stride_h, ph - crop_h), min(c * stride_w, pw - crop_w)
            logits = _logits(model, padded[:, :, top:top + crop_h, left:left + crop_w], (crop_h, crop_w), flip)
            if total is None:
                total = torch.zeros(1, logits.shape[1], ph, pw)
            total[:, :, top:top + crop_h, left:left + crop_w] += logits
            count[:, :, top:top + crop_h, left:left + crop_w] += 1
    return (total / count)[:, :, pad_h // 2:pad_h // 2 + h, pad_w // 2:pad_w // 2 + w]


@torch.no_grad()
def slide(model, image, crop_h, crop_w, stride_rate=2 / 3, base_size=0, scales=(1.0,), flip=False):
    h, w = image.shape[2:]
    total = 0
    for s in scales:
        long_side = round(s * (base_size or max(h, w)))
        if h > w:
            nh, nw = long_side, round(long_side * w / h)
        else:
            nw, nh = long_side, round(long_side * h / w)
        x = image if (nh, nw) == (h, w) else F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=True)
        logits = _slide(model, x, crop_h, crop_w, stride_rate, flip)
        if logits.shape[2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True)
        total = total + logits
    return total
