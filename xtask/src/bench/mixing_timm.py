# timm's Mixup on PyTorch CPU, timed the way `cargo xtask bench mixing` times the Rust mixers:
# each call gets a fresh copy of the batch (made outside the timer), and the timer covers the
# whole call (image mixing and soft targets). Prints one JSON object per (method, shape).
#
# argv: threads warmup iters shapes-json
# timm's mixup module only needs torch and numpy, so it is loaded from its file without
# importing the timm package (which would pull torchvision).
import importlib.util
import json
import os
import sys
import time

import torch

threads, warmup, iters = (int(a) for a in sys.argv[1:4])
shapes = json.loads(sys.argv[4])
torch.set_num_threads(threads)

timm_dir = importlib.util.find_spec("timm").submodule_search_locations[0]
spec = importlib.util.spec_from_file_location("timm_mixup", os.path.join(timm_dir, "data", "mixup.py"))
mixup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mixup)
version = {}
exec(open(os.path.join(timm_dir, "version.py")).read(), version)

modes = {
    "mixup": dict(mixup_alpha=1.0, cutmix_alpha=0.0),
    "cutmix": dict(mixup_alpha=0.0, cutmix_alpha=1.0),
}
for n, c, h, w in shapes:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, c, h, w, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    for name, alphas in modes.items():
        m = mixup.Mixup(prob=1.0, switch_prob=0.0, mode="batch", label_smoothing=0.0,
                        num_classes=10, **alphas)
        times = []
        for i in range(warmup + iters):
            x = x0.clone()
            t0 = time.perf_counter_ns()
            mixed, target = m(x, y)
            t1 = time.perf_counter_ns()
            if i >= warmup:
                times.append((t1 - t0) / 1000.0)
        print(json.dumps({
            "method": name, "shape": [n, c, h, w], "us": times,
            "torch": torch.__version__, "timm": version["__version__"], "threads": threads,
        }), flush=True)
