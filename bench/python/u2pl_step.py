"""The Python side of the step benches: the reference's training step (train_semi.py and
utils/loss_helper.py of the original U2PL code) in plain torch.nn, from the same initial weights,
memory banks and batches as the addon; on the CPU (the same LibTorch as the addon) or, with
"device": "cuda", on the GPU as the reference runs it (cuDNN benchmark mode, memory banks on the
host, .cuda() where it calls it).

  python3 u2pl_step.py '{"init": ".../init.pth", "batches": ".../batches.pth", "threads": 2,
                         "autocast": false, "channels_last": false, "warmup": 2, "runs": 5, ...}'

Prints one JSON object: per step kind ("u2pl", "warmup", "supervised", "floor.u2pl", ...) the
seconds of each timed step, the mean seconds of each phase and on CUDA the peak GPU memory
(torch.cuda.max_memory_allocated, MiB); the peak RSS of the process."""
import json
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from reference_net import Model

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
DEV = torch.device(args.get("device", "cpu"))
CUDA = DEV.type == "cuda"
if CUDA:
    torch.backends.cudnn.benchmark = True  # as the reference's train_semi.py
torch.manual_seed(0)
np.random.seed(0)
CLASSES = args["classes"]
# The network of the recipe (default: camvid-small's R50 deep stem OS16, ASPP 6/12/18).
net = dict(depth=50, num_classes=CLASSES, multi_grid=True, replace_stride_with_dilation=(False, False, True), dilations=(6, 12, 18))
net.update({k: tuple(v) if isinstance(v, list) else v for k, v in args.get("net", {}).items()})
EPOCHS = args.get("epochs", 6)


def autocast():
    return torch.autocast(DEV.type, dtype=torch.bfloat16, enabled=args["autocast"])


def prepare(model):
    model = model.to(DEV)
    return model.to(memory_format=torch.channels_last) if args["channels_last"] else model


def inputs(x):
    return x.contiguous(memory_format=torch.channels_last) if args["channels_last"] else x


# ---- the reference's helpers (utils/loss_helper.py, dataset/augmentation.py) --------------------
def label_onehot(inputs, num_segments):
    # As u2pl-method.md §10.2 reads the reference: ignored pixels (255) get an all-zero vector.
    batch_size, im_h, im_w = inputs.shape
    outputs = torch.zeros([batch_size, num_segments, im_h, im_w], device=inputs.device)
    return outputs.scatter_(1, inputs.unsqueeze(1).clamp(max=num_segments - 1), 1.0) * (inputs != 255).unsqueeze(1)


def generate_cutout_mask(img_size, ratio=2):
    cutout_area = img_size[0] * img_size[1] / ratio
    w = np.random.randint(img_size[1] / ratio + 1, img_size[1])
    h = np.round(cutout_area / w)
    x_start = np.random.randint(0, img_size[1] - w + 1)
    y_start = np.random.randint(0, img_size[0] - h + 1)
    mask = torch.ones(img_size)
    mask[int(y_start):int(y_start + h), int(x_start):int(x_start + w)] = 0
    return mask.long()


def generate_unsup_data(data, target, logits):
    batch_size, _, im_h, im_w = data.shape
    new_data, new_target, new_logits = [], [], []
    for i in range(batch_size):
        mix_mask = generate_cutout_mask([im_h, im_w]).to(data.device)
        new_data.append((data[i] * mix_mask + data[(i + 1) % batch_size] * (1 - mix_mask)).unsqueeze(0))
        new_target.append((target[i] * mix_mask + target[(i + 1) % batch_size] * (1 - mix_mask)).unsqueeze(0))
        new_logits.append((logits[i] * mix_mask + logits[(i + 1) % batch_size] * (1 - mix_mask)).unsqueeze(0))
    return torch.cat(new_data), torch.cat(new_target).long(), torch.cat(new_logits)


def compute_unsupervised_loss(predict, target, percent, pred_teacher):
    batch_size, num_class, h, w = predict.shape
    with torch.no_grad():
        prob = torch.softmax(pred_teacher, dim=1)
        entropy = -torch.sum(prob * torch.log(prob + 1e-10), dim=1)
        thresh = np.percentile(entropy[target != 255].detach().cpu().numpy().flatten(), percent)
        thresh_mask = entropy.ge(thresh).bool() * (target != 255).bool()
        target[thresh_mask] = 255
        weight = batch_size * h * w / torch.sum(target != 255)
    return weight * F.cross_entropy(predict, target, ignore_index=255)


def dequeue_and_enqueue(keys, queue, queue_size):
    keys = keys.detach().clone().cpu()
    queue[0] = torch.cat((queue[0], keys), dim=0)
    if queue[0].shape[0] >= queue_size:
        queue[0] = queue[0][-queue_size:, :]
    return keys.shape[0]


def compute_contra_memobank_loss(rep, label_l, label_u, prob_l, prob_u, low_mask, high_mask, cfg, memobank, queue_size, rep_teacher):
    current_class_threshold = cfg["current_class_threshold"]
    current_class_negative_threshold = cfg["current_class_negative_threshold"]
    low_rank, high_rank = cfg["low_rank"], cfg["high_rank"]
    temp = cfg["temperature"]
    num_queries, num_negatives = cfg["num_queries"], cfg["num_negatives"]
    num_feat = rep.shape[1]
    num_segments = label_l.shape[1]
    low_valid_pixel = torch.cat((label_l, label_u), dim=0) * low_mask
    high_valid_pixel = torch.cat((label_l, label_u), dim=0) * high_mask
    rep = rep.permute(0, 2, 3, 1)
    rep_teacher = rep_teacher.permute(0, 2, 3, 1)
    seg_feat_low_entropy_list, seg_num_list, seg_proto_list = [], [], []
    _, prob_indices_l = torch.sort(prob_l, 1, True)
    prob_indices_l = prob_indices_l.permute(0, 2, 3, 1)
    _, prob_indices_u = torch.sort(prob_u, 1, True)
    prob_indices_u = prob_indices_u.permute(0, 2, 3, 1)
    prob = torch.cat((prob_l, prob_u), dim=0)
    valid_classes = []
    for i in range(num_segments):
        low_valid_pixel_seg = low_valid_pixel[:, i]
        high_valid_pixel_seg = high_valid_pixel[:, i]
        prob_seg = prob[:, i, :, :]
        rep_mask_low_entropy = (prob_seg > current_class_threshold) * low_valid_pixel_seg.bool()
        rep_mask_high_entropy = (prob_seg < current_class_negative_threshold) * high_valid_pixel_seg.bool()
        seg_feat_low_entropy_list.append(rep[rep_mask_low_entropy])
        seg_proto_list.append(torch.mean(rep_teacher[low_valid_pixel_seg.bool()].detach(), dim=0, keepdim=True))
        class_mask_u = torch.sum(prob_indices_u[:, :, :, low_rank:high_rank].eq(i), dim=3).bool()
        class_mask_l = torch.sum(prob_indices_l[:, :, :, :low_rank].eq(i), dim=3).bool()
        class_mask = torch.cat((class_mask_l * (label_l[:, i] == 0), class_mask_u), dim=0)
        negative_mask = rep_mask_high_entropy * class_mask
        keys = rep_teacher[negative_mask].detach()
        dequeue_and_enqueue(keys, memobank[i], queue_size[i])
        if low_valid_pixel_seg.sum() > 0:
            seg_num_list.append(int(low_valid_pixel_seg.sum().item()))
            valid_classes.append(i)
    if len(seg_num_list) <= 1:
        return torch.tensor(0.0, device=rep.device) * rep.sum()
    reco_loss = torch.tensor(0.0, device=rep.device)
    seg_proto = torch.cat(seg_proto_list)
    valid_seg = len(seg_num_list)
    for i in range(valid_seg):
        if len(seg_feat_low_entropy_list[i]) > 0 and memobank[valid_classes[i]][0].shape[0] > 0:
            seg_low_entropy_idx = torch.randint(len(seg_feat_low_entropy_list[i]), size=(num_queries,))
            anchor_feat = seg_feat_low_entropy_list[i][seg_low_entropy_idx].clone()
        else:
            reco_loss = reco_loss + 0 * rep.sum()
            continue
        with torch.no_grad():
            negative_feat = memobank[valid_classes[i]][0].clone().to(rep.device)
            high_entropy_idx = torch.randint(len(negative_feat), size=(num_queries * num_negatives,))
            negative_feat = negative_feat[high_entropy_idx].reshape(num_queries, num_negatives, num_feat)
            positive_feat = seg_proto[i].unsqueeze(0).unsqueeze(0).repeat(num_queries, 1, 1)
            all_feat = torch.cat((positive_feat, negative_feat), dim=1)
        seg_logits = torch.cosine_similarity(anchor_feat.unsqueeze(1), all_feat, dim=2)
        reco_loss = reco_loss + F.cross_entropy(seg_logits / temp, torch.zeros(num_queries, dtype=torch.long, device=rep.device))
    return reco_loss / valid_seg


# ---- set-up: the addon's initial weights and banks, its batches --------------------------------------
init = torch.load(args["init"], map_location="cpu")
batches = torch.load(args["batches"], map_location="cpu")
cfg = args["contrastive"]


def build(rep_head, key):
    m = Model(rep_head=rep_head, **net)
    state = {k: v for k, v in init[key].items() if rep_head or not k.startswith("decoder.representation.")}
    m.load_state_dict(state, strict=True)
    return prepare(m)


def make_optimizer(model):
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    return torch.optim.SGD([{"params": model.encoder.parameters(), "lr": args["lr"]}, {"params": head, "lr": args["lr"] * 10}],
                           lr=args["lr"], momentum=0.9, weight_decay=1e-4)


class Clock:
    def __init__(self):
        self.phases, self.last = {}, time.perf_counter()

    def mark(self, phase):
        if CUDA:
            torch.cuda.synchronize()  # a phase ends when its kernels have run
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self.last
        self.last = now


def batch(k):
    b = {key: v.to(DEV) for key, v in batches["steps"][k % len(batches["steps"])].items()}  # the reference's .cuda() per step
    return inputs(b["labeled_images"]), b["labels"].long(), inputs(b["unlabeled_images"])


def u2pl_step(s, k, clock, floor=False):
    image_l, label_l, image_u = batch(k)
    h, w = label_l.shape[-2:]
    num_labeled = len(image_l)
    with torch.no_grad():
        s["teacher"].eval()
        with autocast():
            pred_u_teacher = s["teacher"](image_u)["pred"].float()
        pred_u_teacher = F.softmax(F.interpolate(pred_u_teacher, (h, w), mode="bilinear", align_corners=True), dim=1)
        logits_u_aug, label_u_aug = torch.max(pred_u_teacher, dim=1)
    clock.mark("pseudo_labels")
    if not floor and np.random.uniform(0, 1) < 0.5:
        image_u_aug, label_u_aug, logits_u_aug = generate_unsup_data(image_u, label_u_aug.clone(), logits_u_aug.clone())
        image_u_aug = inputs(image_u_aug)
    else:
        image_u_aug = image_u
    clock.mark("mixing")
    image_all = torch.cat((image_l, image_u_aug))
    with autocast():
        outs = s["student"](image_all)
    pred_all, rep_all = outs["pred"].float(), outs["rep"].float()
    clock.mark("student_forward")
    s["teacher"].train()
    with torch.no_grad():
        with autocast():
            out_t = s["teacher"](image_all)
        pred_all_teacher, rep_all_teacher = out_t["pred"].float(), out_t["rep"].float()
    clock.mark("teacher_forward")
    pred_l_large = F.interpolate(pred_all[:num_labeled], size=(h, w), mode="bilinear", align_corners=True)
    sup_loss = F.cross_entropy(pred_l_large, label_l, ignore_index=255)
    if floor:
        loss = sup_loss + 0 * rep_all.sum()
    else:
        pred_u_large = F.interpolate(pred_all[num_labeled:], size=(h, w), mode="bilinear", align_corners=True)
        prob_all_teacher = F.softmax(pred_all_teacher, dim=1)
        prob_l_teacher, prob_u_teacher = prob_all_teacher[:num_labeled], prob_all_teacher[num_labeled:]
        pred_u_large_teacher = F.interpolate(pred_all_teacher[num_labeled:], size=(h, w), mode="bilinear", align_corners=True)
        percent_unreliable = 20 * (1 - s["epoch"] / EPOCHS)
        unsup_loss = compute_unsupervised_loss(pred_u_large, label_u_aug.clone(), 100 - percent_unreliable, pred_u_large_teacher.detach())
        alpha_t = cfg["low_entropy_threshold"] * (1 - s["epoch"] / EPOCHS)
        with torch.no_grad():
            prob = torch.softmax(pred_u_large_teacher, dim=1)
            entropy = -torch.sum(prob * torch.log(prob + 1e-10), dim=1)
            low_thresh = np.percentile(entropy[label_u_aug != 255].cpu().numpy().flatten(), alpha_t)
            low_entropy_mask = entropy.le(low_thresh).float() * (label_u_aug != 255).bool()
            high_thresh = np.percentile(entropy[label_u_aug != 255].cpu().numpy().flatten(), 100 - alpha_t)
            high_entropy_mask = entropy.ge(high_thresh).float() * (label_u_aug != 255).bool()
            low_mask_all = torch.cat(((label_l.unsqueeze(1) != 255).float(), low_entropy_mask.unsqueeze(1)))
            low_mask_all = F.interpolate(low_mask_all, size=pred_all.shape[2:], mode="nearest")
            high_mask_all = torch.cat(((label_l.unsqueeze(1) != 255).float(), high_entropy_mask.unsqueeze(1)))
            high_mask_all = F.interpolate(high_mask_all, size=pred_all.shape[2:], mode="nearest")
            label_l_small = F.interpolate(label_onehot(label_l, CLASSES), size=pred_all.shape[2:], mode="nearest")
            label_u_small = F.interpolate(label_onehot(label_u_aug, CLASSES), size=pred_all.shape[2:], mode="nearest")
        contra_loss = compute_contra_memobank_loss(rep_all, label_l_small.long(), label_u_small.long(), prob_l_teacher.detach(),
                                                   prob_u_teacher.detach(), low_mask_all, high_mask_all, cfg, s["memobank"],
                                                   s["queue_size"], rep_all_teacher.detach())
        loss = sup_loss + unsup_loss + contra_loss * cfg["loss_weight"]
    clock.mark("losses")
    s["optimizer"].zero_grad()
    loss.backward()
    clock.mark("backward")
    s["optimizer"].step()
    clock.mark("optimizer")
    if not floor:
        with torch.no_grad():
            ema_decay = 0.99
            for t_params, s_params in zip(s["teacher"].parameters(), s["student"].parameters()):
                t_params.data = ema_decay * t_params.data + (1 - ema_decay) * s_params.data
        clock.mark("ema")
    loss.item()
    clock.mark("other")


def warmup_step(s, k, clock, floor=False):
    image_l, label_l, _ = batch(k)
    h, w = label_l.shape[-2:]
    with autocast():
        outs = s["student"](image_l)
    pred, rep = outs["pred"].float(), outs["rep"].float()
    clock.mark("student_forward")
    sup_loss = F.cross_entropy(F.interpolate(pred, (h, w), mode="bilinear", align_corners=True), label_l, ignore_index=255)
    loss = sup_loss + 0 * rep.sum()
    clock.mark("losses")
    s["teacher"].train()
    with torch.no_grad(), autocast():
        s["teacher"](image_l)
    clock.mark("teacher_forward")
    s["optimizer"].zero_grad()
    loss.backward()
    clock.mark("backward")
    s["optimizer"].step()
    clock.mark("optimizer")
    loss.item()
    clock.mark("other")


def supervised_step(s, k, clock, floor=False):
    image_l, label_l, _ = batch(k)
    h, w = label_l.shape[-2:]
    with autocast():
        pred = s["student"](image_l)["pred"].float()
    clock.mark("student_forward")
    loss = F.cross_entropy(F.interpolate(pred, (h, w), mode="bilinear", align_corners=True), label_l, ignore_index=255)
    clock.mark("losses")
    s["optimizer"].zero_grad()
    loss.backward()
    clock.mark("backward")
    s["optimizer"].step()
    clock.mark("optimizer")
    loss.item()
    clock.mark("other")


def state(semi):
    student = build(semi, "model_state")
    s = {"student": student, "optimizer": make_optimizer(student), "epoch": 1}
    if semi:
        s["teacher"] = build(True, "teacher_state")
        for p in s["teacher"].parameters():
            p.requires_grad_(False)
        s["memobank"] = [[k.clone()] for k in init["memory_bank"]["keys"]]
        s["queue_size"] = list(init["memory_bank"]["capacity"])
    return s


out = {"torch": torch.__version__, "steps": {}}
for kind, fn, semi, floor in [("u2pl", u2pl_step, True, False), ("floor.u2pl", u2pl_step, True, True), ("warmup", warmup_step, True, False),
                              ("supervised", supervised_step, False, False)]:
    if kind not in args["kinds"]:
        continue
    s = state(semi)
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    seconds, phases = [], {}
    for k in range(args["warmup"] + args["runs"]):
        clock = Clock()
        t0 = time.perf_counter()
        fn(s, k, clock, floor)
        if k >= args["warmup"]:
            seconds.append(time.perf_counter() - t0)
            for name, v in clock.phases.items():
                phases[name] = phases.get(name, 0.0) + v / args["runs"]
    out["steps"][kind] = {"seconds": seconds, "phases": phases}
    if CUDA:
        out["steps"][kind]["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    del s
    if CUDA:
        torch.cuda.empty_cache()
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
