"""Python side of the network bench: the same DeepLabv3+ in torch.nn, forward + CE + backward."""
import json
import sys
import time

import torch
import torch.nn.functional as F

from reference_net import Model

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
m = Model(depth=args["depth"], num_classes=args["classes"], rep_head=True, multi_grid=True).train()
x = torch.rand(args["batch"], 3, args["size"], args["size"]) * 2 - 1
y = torch.randint(0, args["classes"], (args["batch"], args["size"], args["size"]))
if args["channels_last"]:
    m = m.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)


def step():
    m.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args["autocast"]):
        pred = m(x)["pred"]
        pred = F.interpolate(pred.float(), size=y.shape[-2:], mode="bilinear", align_corners=True)
        loss = F.cross_entropy(pred, y, ignore_index=255)
    loss.backward()


step()
step()  # two warm-up runs, as on the u2pl side
seconds = []
for _ in range(args["runs"]):
    t0 = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"seconds": seconds, "torch": torch.__version__}))
