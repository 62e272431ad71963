# PyTorch peer of `cargo xtask bench models`: the same CIFAR ResNet, batch and training step
# as the burn side, timed the same way. Prints one JSON object on stdout. The bench prepends
# cifar_resnet_torch.py (the network).
#
# argv: step block(basic|bottleneck) blocks(e.g. 2,2,2,2) width classes batch threads warmup
#            steps device(cpu|cuda)
#   or: ops ops_json threads warmup steps         (per-op forward+backward CPU ms)
#   or: conv_parts convs_json threads warmup steps (each conv's forward, input and weight
#                                                   gradient, CPU ms)
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def timed(fn, n, sync=lambda: None):
    """Wall-clock seconds of n calls, and the process's CPU seconds (all threads) for each."""
    wall, cpu = [], []
    for _ in range(n):
        sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def time_ops(ops, warmup, steps):
    """Forward+backward (seeded through a sum) of each op, median CPU ms, like the burn side."""
    result = []
    for op in ops:
        n, c, h, w = op["input"]
        kind = op["kind"]
        x = torch.randn(n, c, h, w)
        if kind["op"] == "conv":
            k = kind["kernel"]
            f = nn.Conv2d(c, kind["out"], k, stride=kind["stride"], padding=k // 2, bias=False)
            x.requires_grad_(kind["input_grad"])
        else:
            x.requires_grad_(True)
            if kind["op"] == "batch_norm":
                f = nn.BatchNorm2d(c).train()
            elif kind["op"] == "relu":
                f = F.relu
            else:
                other = torch.randn(n, c, h, w)
                f = lambda t: t + other  # noqa: E731

        def step():
            f(x).sum().backward()

        timed(step, warmup)
        result.append(statistics.median(timed(step, steps)[1]) * 1e3)
    return result


def time_conv_parts(convs, warmup, steps):
    """CPU ms of each conv's forward, input gradient and weight gradient, called directly."""
    result = []
    for op in convs:
        n, c, h, w = op["input"]
        kind = op["kind"]
        k, s, out = kind["kernel"], kind["stride"], kind["out"]
        x, weight = torch.randn(n, c, h, w), torch.randn(out, c, k, k)
        grad = torch.randn(F.conv2d(x, weight, stride=s, padding=k // 2).shape)
        parts = [
            lambda: F.conv2d(x, weight, stride=s, padding=k // 2),
            lambda: torch.nn.grad.conv2d_input(x.shape, weight, grad, stride=s, padding=k // 2),
            lambda: torch.nn.grad.conv2d_weight(x, weight.shape, grad, stride=s, padding=k // 2),
        ]
        times = []
        for part in parts:
            timed(part, warmup)
            times.append(statistics.median(timed(part, steps)[1]) * 1e3)
        result.append(times)
    return result


mode = sys.argv[1]
if mode in ("ops", "conv_parts"):
    ops, threads, warmup, steps = json.loads(sys.argv[2]), *map(int, sys.argv[3:6])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    with torch.no_grad() if mode == "conv_parts" else torch.enable_grad():
        times = time_ops(ops, warmup, steps) if mode == "ops" else time_conv_parts(ops, warmup, steps)
    print(json.dumps(times))
    sys.exit(0)

block_kind, blocks, width, classes, batch, threads, warmup, steps, device = sys.argv[2:11]
# fp32 or bf16 (torch.autocast); contiguous or channels_last (model and batch).
precision, memory_format = sys.argv[11:13]
blocks = [int(b) for b in blocks.split(",")]
width, classes, batch = int(width), int(classes), int(batch)
threads, warmup, steps = int(threads), int(warmup), int(steps)

torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
torch.manual_seed(0)


block = Basic if block_kind == "basic" else Bottleneck
model = CifarResNet(block, blocks, width, classes, in_channels=3).to(device)
params = sum(p.numel() for p in model.parameters())
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
x = torch.randn(batch, 3, 32, 32, device=device)
labels = torch.randint(0, classes, (batch,), device=device)
soft = F.one_hot(labels, classes).float()
if memory_format == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)


def autocast():
    """Autocast over the forward pass and the loss, as PyTorch's AMP recipes place it."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype, enabled=precision != "fp32")


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


def train_step():
    with autocast():
        logits = model(x)
        loss = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


model.train()
timed(train_step, warmup, sync)
train, train_cpu = timed(train_step, steps, sync)
model.eval()
with torch.no_grad(), autocast():
    timed(lambda: model(x), warmup, sync)
    infer, infer_cpu = timed(lambda: model(x), steps, sync)

name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
print(json.dumps({
    "torch": torch.__version__,
    "device": name,
    "threads": torch.get_num_threads(),
    "params": params,
    "train_s": train,
    "infer_s": infer,
    "train_cpu_s": train_cpu,
    "infer_cpu_s": infer_cpu,
    "train_median_s": statistics.median(train),
    "infer_median_s": statistics.median(infer),
}))
