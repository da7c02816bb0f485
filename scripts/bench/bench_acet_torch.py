"""One ACET training step in PyTorch (CPU), written the usual way, paired with bench_acet.lua:
LeNet (bench_models_torch.py's, MNIST-shaped, Adam 1e-3) and ResNetSmall (the same file's,
CIFAR-shaped, SGD 0.1 with momentum 0.9, weight decay on all but batch norm). 128 clean +
128 noise images (permutation/uniform noise, 15x15 Gaussian blur with mirror padding,
rescale), 40 PGD sign steps of 0.0075 in the 0.3 ball maximising log max softmax with the
model in eval mode and the best iterate kept, then one step on [noise; clean] with weight
decay 5e-4 * sum w^2. Each model is timed in NCHW and in channels-last memory format; the
faster counts as PyTorch's time (MODEL_acet_step_s), both are printed
(MODEL_acet_step_nchw_s, MODEL_acet_step_channels_last_s).
Usage: /usr/bin/python3 scripts/bench/bench_acet_torch.py THREADS [MODEL]
BENCH_SMOKE=1: 8 + 8 images, 2 PGD steps, one timed step (checks that it runs; no timing)."""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models_torch import LeNet, ResNetSmall  # noqa: E402

SMOKE = os.environ.get("BENCH_SMOKE") == "1"


def make_noise(x):
    n, c, h, w = x.shape
    k = n // 2
    perm = torch.stack([torch.randperm(h * w) for _ in range(k)])
    flat = x[:k].reshape(k, c, h * w)
    permuted = torch.gather(flat, 2, perm.unsqueeze(1).expand(k, c, h * w)).reshape(k, c, h, w)
    z = torch.cat([permuted, torch.rand(n - k, c, h, w)])
    sigma = 1.0 + 1.5 * torch.rand(1).item()
    t = torch.arange(-7, 8, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    kern = (g[:, None] * g[None, :])[None, None].repeat(c, 1, 1, 1)
    zp = F.pad(z, (15, 15, 15, 15), mode="reflect")  # close to TF's SYMMETRIC
    z = F.conv2d(zp, kern, padding=7, groups=c)[:, :, 15:-15, 15:-15]
    lo = z.flatten(1).min(1)[0].view(-1, 1, 1, 1)
    hi = z.flatten(1).max(1)[0].view(-1, 1, 1, 1)
    return (z - lo) / (hi - lo)


def log_max_conf(logits):
    return F.log_softmax(logits, 1).max(1)[0]


def pgd(model, z, fmt, eps=0.3, steps=40, step=0.0075):
    model.eval()
    s = torch.rand(z.shape[0], 1, 1, 1)
    x = (z + s * (2 * torch.rand_like(z) - 1) * eps).clamp(0, 1).contiguous(memory_format=fmt)
    with torch.no_grad():
        best, best_obj = z.clone(), log_max_conf(model(z))
    for i in range(steps + 1):
        last = i == steps   # the last iterate is only scored: no gradient, as in umbra
        x.requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            obj = log_max_conf(model(x))
        if not last:
            g, = torch.autograd.grad(obj.sum(), x)
        with torch.no_grad():
            better = obj > best_obj
            best[better] = x[better]
            best_obj = torch.where(better, obj, best_obj)
            if last:
                break
            x = x + step * g.sign()
            x = (z + (x.clamp(0, 1) - z).clamp(-eps, eps)).contiguous(memory_format=fmt)
    model.train()
    return best.detach()


def step_seconds(name, fmt):
    torch.manual_seed(1)
    batch, niter = (8, 2) if SMOKE else (128, 40)
    if name == "lenet":
        model, x = LeNet(), torch.rand(batch, 1, 28, 28)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        decay = list(model.parameters())
    else:
        model, x = ResNetSmall(), torch.rand(batch, 3, 32, 32)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        decay = [p for n, p in model.named_parameters() if "bn" not in n]
    model = model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    y = torch.arange(batch) % 10

    def step():
        z = pgd(model, make_noise(x), fmt, steps=niter)
        logits = model(torch.cat([z, x]).contiguous(memory_format=fmt))
        loss_clean = F.cross_entropy(logits[batch:], y, reduction="sum")
        loss_out = log_max_conf(logits[:batch]).sum()
        reg = sum((p ** 2).sum() for p in decay)
        loss = (loss_clean + loss_out) / (2 * batch) + 5e-4 * reg
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    best = float("inf")
    for _ in range(1 if SMOKE else 3):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    only = sys.argv[2] if len(sys.argv) > 2 else None
    torch.set_num_threads(threads)
    for name in ("lenet", "resnet_small"):
        if only and only != name:
            continue
        nchw = step_seconds(name, torch.contiguous_format)
        cl = step_seconds(name, torch.channels_last)
        print("%s_acet_step_s %.3f" % (name, min(nchw, cl)))
        print("%s_acet_step_nchw_s %.3f" % (name, nchw))
        print("%s_acet_step_channels_last_s %.3f" % (name, cl))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
