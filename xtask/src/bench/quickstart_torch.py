# PyTorch peer of `cargo xtask bench quickstart`: the quickstart's training epoch as a lean
# in-memory PyTorch loop, the best case for PyTorch (no DataLoader workers, no per-image Python
# objects: the augmentation runs on whole batches). The bench prepends cifar_resnet_torch.py
# (the network). Prints one JSON object on stdout.
#
# argv: one JSON object: pixels, labels (files of u8), images, height, width, channels,
#       classes, block (basic|bottleneck), blocks, width_base, batch, pad_to, crop_padding, hflip, mean, std, lr,
#       momentum, nesterov, weight_decay, threads, seed, precision (fp32|bf16),
#       memory_format (contiguous|channels_last)
import json
import sys
import time

import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.set_num_interop_threads(1)
torch.manual_seed(cfg["seed"])

n, h, w, c = cfg["images"], cfg["height"], cfg["width"], cfg["channels"]
with open(cfg["pixels"], "rb") as f:
    pixels = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
with open(cfg["labels"], "rb") as f:
    labels = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
# The images as the trainer sees them: channels first, centred on a pad_to x pad_to zero canvas,
# then zero-padded by crop_padding for the random crops (black pixels before normalising, as
# the trainer's `pad_to` and `crop_padding` pad).
images = pixels.view(n, h, w, c).permute(0, 3, 1, 2)
side = cfg["pad_to"] or h
top, left = (side - h) // 2, (side - w) // 2
p = cfg["crop_padding"]
canvas = torch.zeros(n, c, side + 2 * p, side + 2 * p, dtype=torch.uint8)
canvas[:, :, p + top : p + top + h, p + left : p + left + w] = images
mean = torch.tensor(cfg["mean"]).view(1, c, 1, 1) * 255
std = torch.tensor(cfg["std"]).view(1, c, 1, 1) * 255

# CifarResNet, Basic and Bottleneck: cifar_resnet_torch.py.
block = Basic if cfg["block"] == "basic" else Bottleneck  # noqa: F821
model = CifarResNet(block, cfg["blocks"], cfg["width_base"], cfg["classes"], in_channels=c)  # noqa: F821
params = sum(q.numel() for q in model.parameters())
opt = torch.optim.SGD(
    model.parameters(),
    lr=cfg["lr"],
    momentum=cfg["momentum"],
    nesterov=cfg["nesterov"],
    weight_decay=cfg["weight_decay"],
)
channels_last = cfg["memory_format"] == "channels_last"
if channels_last:
    model = model.to(memory_format=torch.channels_last)
bf16 = cfg["precision"] == "bf16"
batch = cfg["batch"]
steps = n // batch
offsets = torch.arange(side)


def augmented(index):
    """The batch at `index`: a random side x side crop of each padded image, flipped with
    probability 1/2, normalised: gathered in one indexing op for the whole batch."""
    b = len(index)
    dy, dx = torch.randint(0, 2 * p + 1, (b,)), torch.randint(0, 2 * p + 1, (b,))
    rows = dy[:, None] + offsets
    cols = dx[:, None] + offsets
    if cfg["hflip"]:
        flip = torch.rand(b) < 0.5
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    x = canvas[index[:, None, None, None], torch.arange(c)[None, :, None, None],
               rows[:, None, :, None], cols[:, None, None, :]]
    x = (x.float() - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


model.train()
start = time.perf_counter()
order = torch.randperm(n)
loss_sum = 0.0
for step in range(steps):
    index = order[step * batch : (step + 1) * batch]
    x, y = augmented(index), labels[index]
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    loss_sum += loss.item()
seconds = time.perf_counter() - start

print(json.dumps({
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "params": params,
    "images": steps * batch,
    "seconds": seconds,
    "mean_loss": loss_sum / max(steps, 1),
}))
