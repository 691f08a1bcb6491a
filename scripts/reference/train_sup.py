"""The original U2PL code's supervised-only training (its train_sup.py) on one of our experiment
configs, on the CPU: the baseline our supervised path is compared with (issue #37).

  U2PL_REFERENCE=~/.cache/u2pl/reference/U2PL python3 scripts/reference/train_sup.py EXPERIMENT [--threads N]

EXPERIMENT is a folder with a config.yaml in our schema (which is the reference's, plus a few keys).
The reference's modules are imported unmodified from a checkout of github.com/Haochen-Wang409/U2PL
(Apache-2.0) outside this repository; its train_sup.py itself cannot run here (it calls .cuda() and
DistributedDataParallel), so this file is its main(), train() and validate() with those calls left
out, line for line otherwise: ModelBuilder, get_criterion, get_optimizer / get_scheduler (with the
second optimizer the scheduler drives, as there), the dataset transforms of build_transfrom and the
list sampling of voc_dset, DistributedSampler's order for one replica, bilinear upsampling with
align_corners=True, and mIoU as intersection / (union + 1e-10) over every class.

What our configs have and the reference's loaders do not know is mapped, not changed: CamVid lists
("image label" pairs) with void (11) read as ignore, encoder and decoder names with the reference's
module paths and pretrained: false, n_sup = the labeled list's length when the config has none (the
reference's default of 10582 is VOC's), head_lr_multiplier for its `times`. dataset.test (held-out
images) is scored after each validation as our trainer does. Keys the reference cannot run (class
weights, presets, U2PL) are refused.

Writes what u2pl-train writes for the study scripts: SNAPSHOT/metrics.jsonl (a step line per step,
an epoch line per epoch with miou, iou, test_miou, ...) and SNAPSHOT/ckpt.pth, from which a stopped
run resumes exactly (model, optimizer, epoch and the Python, NumPy and torch generators)."""
import argparse
import collections
import collections.abc
import copy
import json
import math
import os
import random
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import yaml

# The reference was written for Python < 3.10, where collections.Iterable still existed.
for _name in ("Iterable", "Sequence", "Mapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

REFERENCE_COMMIT = "ab3d2be313d4d6b2885e7a0213d4fce82a803b79"
reference = os.path.expanduser(os.environ.get("U2PL_REFERENCE", "~/.cache/u2pl/reference/U2PL"))
if not os.path.isfile(os.path.join(reference, "u2pl", "models", "model_helper.py")):
    sys.exit(f"train_sup.py: {reference}: no checkout of the original U2PL code (set U2PL_REFERENCE, or: "
             f"git clone https://github.com/Haochen-Wang409/U2PL {reference} && git -C {reference} checkout {REFERENCE_COMMIT[:7]})")
sys.path.insert(0, reference)

from u2pl.dataset import augmentation as psp_trsform  # noqa: E402
from u2pl.dataset.pascal_voc import build_transfrom, voc_dset  # noqa: E402
from u2pl.models.model_helper import ModelBuilder  # noqa: E402
from u2pl.utils.loss_helper import get_criterion  # noqa: E402
from u2pl.utils.lr_helper import get_optimizer, get_scheduler  # noqa: E402
from u2pl.utils.utils import intersectionAndUnion, set_random_seed  # noqa: E402

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value):
    """${VAR} and ${VAR:-default}, as our config loader expands them."""
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, str):
        whole = ENV_REF.fullmatch(value)
        out = ENV_REF.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
        if whole and re.fullmatch(r"-?\d+", out):
            return int(out)
        return out
    return value


def fail(key, message):
    sys.exit(f"train_sup.py: {key}: {message}")


def reference_config(path):
    """Our config.yaml, as the reference's code reads its own."""
    with open(path) as f:
        cfg = expand(yaml.safe_load(f))
    here = os.path.dirname(os.path.abspath(path))
    for key in ("preset",):
        if key in cfg:
            fail(key, "the original code has no presets")
    if cfg["dataset"]["type"] != "camvid":
        fail("dataset.type", f"expected camvid (supervised-only CamVid lists), got {cfg['dataset']['type']!r}")
    crit = cfg.setdefault("criterion", {"type": "CELoss"})
    crit.setdefault("kwargs", {})
    if set(crit["kwargs"]) - {"thresh", "min_kept"}:
        fail("criterion.kwargs", f"the original code knows thresh and min_kept only, got {sorted(crit['kwargs'])}")
    for split in ("train", "val", "test"):
        if split in cfg["dataset"]:
            s = cfg["dataset"][split]
            s["data_root"] = os.path.normpath(os.path.join(here, s["data_root"]))
            s["data_list"] = os.path.normpath(os.path.join(here, s["data_list"]))
    net = cfg["net"]
    net["sync_bn"] = False  # one process on the CPU (SyncBN needs CUDA and a process group)
    net["encoder"]["type"] = f"u2pl.models.resnet.{net['encoder']['type'].split('.')[-1]}"
    net["encoder"]["kwargs"]["pretrained"] = False  # from scratch, as camvid-small is
    net["decoder"]["type"] = f"u2pl.models.decoder.{net['decoder']['type'].split('.')[-1]}"
    cfg["saver"]["snapshot_dir"] = os.path.join(here, cfg["saver"]["snapshot_dir"])
    return cfg


def camvid_pairs(data_list):
    """A CamVid list's (image, label) paths under its root: "train/x.png" -> "trainannot/x.png"."""
    pairs = []
    with open(data_list) as f:
        for line in f:
            if line.strip():
                image = line.split()[0].replace("/SegNet/CamVid/", "")
                folder, name = image.split("/", 1)
                pairs.append([image, f"{folder}annot/{name}"])
    return pairs


class CamVidDataset(voc_dset):
    """voc_dset over a CamVid list: its sampling of n_sup entries and its __getitem__, void read as ignore."""

    def __init__(self, data_root, pairs, trs_form, seed, n_sup, split, resize):
        # BaseDataset.parse_input_list knows VOC and Cityscapes lists only: the fields it fills, filled here.
        self.resize = resize
        self.list_sample = pairs
        self.num_sample = len(pairs)
        self.data_root = data_root
        self.transform = trs_form
        random.seed(seed)
        if split == "train":
            if len(self.list_sample) < n_sup:
                self.list_sample = self.list_sample * math.ceil(n_sup / len(self.list_sample))
            self.list_sample_new = random.sample(self.list_sample, n_sup)
        else:
            self.list_sample_new = self.list_sample

    def img_loader(self, path, mode):
        a = np.asarray(super().img_loader(path, mode)).copy()
        if mode == "L":
            a[a == 11] = 255  # CamVid's void
        return a

    def __getitem__(self, index):
        # voc_dset's, with dataset.resize applied first by the reference's own Resize: its Compose runs
        # at most five plain transforms and takes a sixth for one of its semi-supervised ones, so
        # ToTensor, Normalize, Resize, RandResize, flip and Crop cannot be one Compose. Bilinear
        # resizing is linear, so resizing before Normalize gives the same values (up to rounding).
        image = self.img_loader(os.path.join(self.data_root, self.list_sample_new[index][0]), "RGB")
        label = self.img_loader(os.path.join(self.data_root, self.list_sample_new[index][1]), "L")
        if self.resize:
            image, label = psp_trsform.Resize(self.resize)(*psp_trsform.ToTensor()(image, label))
            image, label = image[0].permute(1, 2, 0).numpy(), label[0, 0].numpy()
        image, label = self.transform(image, label)
        return image[0], label[0, 0].long()


def loader(cfg, split, seed):
    # build_vocloader's merge of the split over the dataset section, then its transform and sampler.
    c = copy.deepcopy(cfg["dataset"])
    c.update(c.get(split, {}))
    pairs = camvid_pairs(c["data_list"])
    n_sup = c.get("n_sup", len(pairs))
    resize = c.pop("resize", None)
    dset = CamVidDataset(c["data_root"], pairs, build_transfrom(c), seed, n_sup, "train" if split == "train" else "val", resize)
    sampler = torch.utils.data.distributed.DistributedSampler(dset, num_replicas=1, rank=0)
    return torch.utils.data.DataLoader(dset, batch_size=c.get("batch_size", 1), num_workers=0, sampler=sampler, shuffle=False)


def evaluate(model, data_loader, num_classes, ignore_label):
    model.eval()
    inter, union, target_area = (np.zeros(num_classes) for _ in range(3))
    correct = total = 0
    for images, labels in data_loader:
        h, w = labels.shape[-2:]
        with torch.no_grad():
            output = F.interpolate(model(images)["pred"], (h, w), mode="bilinear", align_corners=True)
        output = output.data.max(1)[1].cpu().numpy()
        target = labels.long().cpu().numpy()
        i, u, t = intersectionAndUnion(output, target, num_classes, ignore_label)
        inter += i
        union += u
        target_area += t
        valid = target != ignore_label
        correct += int((output[valid] == target[valid]).sum())
        total += int(valid.sum())
    iou = inter / (union + 1e-10)
    return {"miou": float(np.mean(iou)), "iou": [float(x) for x in iou], "pixel_accuracy": correct / total if total else 0.0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("experiment")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    config = args.experiment if args.experiment.endswith(".yaml") else os.path.join(args.experiment, "config.yaml")
    cfg = reference_config(config)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed = cfg.get("seed", 0)
    snapshot = cfg["saver"]["snapshot_dir"]
    os.makedirs(snapshot, exist_ok=True)
    metrics_path = os.path.join(snapshot, "metrics.jsonl")
    ckpt_path = os.path.join(snapshot, "ckpt.pth")

    set_random_seed(seed)
    model = ModelBuilder(cfg["net"])
    modules_back = [model.encoder]
    modules_head = [model.decoder]
    criterion = get_criterion(cfg)
    train_loader = loader(cfg, "train", seed)
    val_loader = loader(cfg, "val", seed) if "val" in cfg["dataset"] else None
    test_loader = loader(cfg, "test", seed) if "test" in cfg["dataset"] else None

    cfg_trainer = cfg["trainer"]
    cfg_optim = cfg_trainer["optimizer"]
    times = cfg["dataset"].get("head_lr_multiplier", 10 if "pascal" in cfg["dataset"]["type"] else 1)
    params_list = [dict(params=m.parameters(), lr=cfg_optim["kwargs"]["lr"]) for m in modules_back]
    params_list += [dict(params=m.parameters(), lr=cfg_optim["kwargs"]["lr"] * times) for m in modules_head]
    optimizer = get_optimizer(params_list, cfg_optim)

    best_prec, last_epoch = 0.0, 0
    if cfg["saver"].get("auto_resume", False) and os.path.exists(ckpt_path):
        state = torch.load(ckpt_path)
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        best_prec, last_epoch = state["best_miou"], state["epoch"] + 1
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {ckpt_path} at epoch {last_epoch + 1}", flush=True)
    # metrics.jsonl as far as the checkpoint (a run stopped mid-epoch repeats that epoch).
    kept = []
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            kept = [line for line in f if line.strip() and json.loads(line)["epoch"] < last_epoch]
    with open(metrics_path, "w") as f:
        f.writelines(kept)

    optimizer_old = get_optimizer(params_list, cfg_optim)
    lr_scheduler = get_scheduler(cfg_trainer, len(train_loader), optimizer_old, start_epoch=last_epoch)

    num_classes, ignore_label = cfg["net"]["num_classes"], cfg["dataset"]["ignore_label"]
    epochs = cfg_trainer["epochs"]
    for epoch in range(last_epoch, epochs):
        epoch_start = time.time()
        model.train()
        train_loader.sampler.set_epoch(epoch)
        data_iter = iter(train_loader)
        records = []
        for step in range(len(train_loader)):
            batch_start = time.time()
            lr_scheduler.step()
            # The scheduler drives optimizer_old, whose param groups are optimizer's own dicts (SGD keeps
            # the dicts it is given) until optimizer.load_state_dict replaces them on a resume, after
            # which the reference trains at a frozen lr. Copying the lr over is a no-op in a run that
            # never resumed, and keeps a resumed one on the schedule of an uninterrupted run.
            for group, value in zip(optimizer.param_groups, lr_scheduler.get_lr()):
                group["lr"] = value
            lr0 = optimizer.param_groups[0]["lr"]  # the step's own (the reference logs the one before)
            image, label = next(data_iter)
            data_s = time.time() - batch_start
            _, h, w = label.size()
            pred = F.interpolate(model(image)["pred"], (h, w), mode="bilinear", align_corners=True)
            loss = criterion(pred, label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch_end = time.time()
            records.append({"type": "step", "epoch": epoch, "step": step, "global_step": epoch * len(train_loader) + step, "phase": "supervised",
                            "loss": loss.item(), "supervised": loss.item(), "lr": lr0, "data_s": data_s, "step_s": batch_end - batch_start - data_s})
        record = {"type": "epoch", "epoch": epoch, "phase": "supervised", "miou": None, "iou": None, "pixel_accuracy": None}
        if cfg_trainer.get("eval_on", True) and val_loader is not None:
            val = evaluate(model, val_loader, num_classes, ignore_label)
            best_prec = max(best_prec, val["miou"])
            record.update(val)
        record["best_miou"] = best_prec
        if test_loader is not None:
            test = evaluate(model, test_loader, num_classes, ignore_label)
            record.update({"test_miou": test["miou"], "test_iou": test["iou"], "test_pixel_accuracy": test["pixel_accuracy"]})
        record["seconds"] = time.time() - epoch_start
        state = {"epoch": epoch, "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(), "best_miou": best_prec,
                 "python_rng": random.getstate(), "numpy_rng": np.random.get_state(), "torch_rng": torch.get_rng_state()}
        torch.save(state, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        with open(metrics_path, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records + [record])
        test_text = f", test mIoU {100 * record['test_miou']:.2f}" if test_loader is not None else ""
        print(f"epoch {epoch + 1}: mIoU {100 * (record['miou'] or 0):.2f} (best {100 * best_prec:.2f}){test_text}, {record['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
