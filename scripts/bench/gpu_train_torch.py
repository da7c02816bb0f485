#!/usr/bin/env python3
"""The benchmarks of scripts/bench/gpu_train.lua in PyTorch, for comparison on the same
machine: a plain training step and an ACET step (authors' noise, 40 PGD steps of
max_conf in evaluation mode, one training forward/backward on [noise; clean], SGD with
momentum) for LeNet and ResNetSmall (the same architectures, TF `same` padding, batch
norm momentum 0.99 in TF's convention), batch 128, float32 with TF32 off (as umbra).
Output: "BENCH <name> <images/s>" per benchmark.
usage: gpu_train_torch.py [cuda|cpu] [seconds per benchmark (3)] [only]"""
import math
import sys
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F

device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
budget = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
only = sys.argv[3] if len(sys.argv) > 3 else None
batch, classes = 128, 10
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True


def same_pad(x, k, s):
    """TF `same`: pad total max((ceil(in/s)-1)*s + k - in, 0), the extra cell bottom/right."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class ConvSame(tnn.Conv2d):
    def __init__(self, cin, cout, k, stride=1, bias=True):
        super().__init__(cin, cout, k, stride=stride, bias=bias)

    def forward(self, x):
        return F.conv2d(same_pad(x, self.kernel_size[0], self.stride[0]), self.weight, self.bias, self.stride)


class LeNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = ConvSame(1, 32, 5), ConvSame(32, 64, 5)
        self.fc1, self.fc2 = tnn.Linear(7 * 7 * 64, 1024), tnn.Linear(1024, classes)

    def forward(self, x):
        x = F.max_pool2d(same_pad(F.relu(self.conv1(x)), 2, 2), 2, 2)
        x = F.max_pool2d(same_pad(F.relu(self.conv2(x)), 2, 2), 2, 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def bn(c):
    return tnn.BatchNorm2d(c, eps=1.001e-5, momentum=0.01)


class Unit(tnn.Module):
    """Pre-activation unit as models/resnet_small.lua: the first unit of a stage shares its
    activation with the shortcut; avg-pool + zero channel-pad shortcut on width changes."""

    def __init__(self, cin, cout, stride, shared):
        super().__init__()
        self.shared, self.stride, self.cin, self.cout = shared, stride, cin, cout
        self.bn1, self.conv1 = bn(cin), ConvSame(cin, cout, 3, stride, bias=False)
        self.bn2, self.conv2 = bn(cout), ConvSame(cout, cout, 3, 1, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        p = a if self.shared else x
        y = self.conv2(F.relu(self.bn2(self.conv1(a))))
        if self.cin != self.cout:
            p = F.avg_pool2d(p, self.stride, self.stride)
            pad = (self.cout - self.cin) // 2
            p = F.pad(p, (0, 0, 0, 0, pad, self.cout - self.cin - pad))
        return y + p


class ResNetSmall(tnn.Module):
    def __init__(self):
        super().__init__()
        widths, strides = [16, 16, 32, 64], [1, 2, 2]
        self.conv = ConvSame(3, 16, 3, bias=False)
        units = []
        for s in range(3):
            for u in range(3):
                cin = widths[s] if u == 0 else widths[s + 1]
                units.append(Unit(cin, widths[s + 1], strides[s] if u == 0 else 1, u == 0))
        self.units = tnn.Sequential(*units)
        self.bn, self.fc = bn(64), tnn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.units(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def lowpass_taps(sigma):
    t = torch.arange(-7, 8, dtype=torch.float32, device=device)
    w = torch.exp(-t * t / (2 * sigma * sigma))
    return w / w.sum()


def symmetric_index(n):
    i = torch.arange(-7, n + 7, device=device)
    return torch.where(i < 0, -i - 1, torch.where(i >= n, 2 * n - i - 1, i))


def authors_noise(x):
    n, c, h, w = x.shape
    half = n // 2
    perm = torch.argsort(torch.rand(half, h * w, device=device), dim=1)
    flat = x[:half].reshape(half, c, h * w)
    permuted = torch.gather(flat, 2, perm[:, None, :].expand(half, c, h * w)).reshape(half, c, h, w)
    z = torch.cat([permuted, torch.rand(n - half, c, h, w, device=device)])
    taps = lowpass_taps(1.0 + 1.5 * torch.rand(1).item())
    z = z[:, :, :, symmetric_index(w)]
    z = F.conv2d(z.reshape(n * c, 1, h, w + 14), taps.view(1, 1, 1, 15)).reshape(n, c, h, w)
    z = z[:, :, symmetric_index(h), :]
    z = F.conv2d(z.reshape(n * c, 1, h + 14, w), taps.view(1, 1, 15, 1)).reshape(n, c, h, w)
    lo = z.flatten(1).min(1)[0].view(n, 1, 1, 1)
    hi = z.flatten(1).max(1)[0].view(n, 1, 1, 1)
    return (z - lo) / (hi - lo).clamp_min(1e-12)


def max_conf(logits):
    return F.log_softmax(logits, 1).max(1)[0]


def pgd(model, z, eps=0.3, steps=40):
    model.eval()
    step = eps / steps
    s = torch.rand(z.shape[0], 1, 1, 1, device=device)
    x = (z + s * (2 * torch.rand_like(z) - 1) * eps).clamp(0, 1)
    best, best_obj = z.clone(), torch.full((z.shape[0],), -math.inf, device=device)
    for it in range(steps + 1):
        x.requires_grad_(True)
        obj = max_conf(model(x))
        better = obj.detach() > best_obj
        best[better] = x.detach()[better]
        best_obj = torch.where(better, obj.detach(), best_obj)
        if it == steps:
            break
        g, = torch.autograd.grad(obj.sum(), x)
        with torch.no_grad():
            x = z + ((x + step * g.sign()).clamp(0, 1) - z).clamp(-eps, eps)
    model.train()
    return best.detach()


def plain_step(model, opt, x, y):
    opt.zero_grad(set_to_none=False)
    F.cross_entropy(model(x), y).backward()
    opt.step()


def acet_step(model, opt, x, y):
    z = pgd(model, authors_noise(x))
    logits = model(torch.cat([z, x]))
    n = x.shape[0]
    loss = (F.cross_entropy(logits[n:], y, reduction="sum") + max_conf(logits[:n]).sum()) / (2 * n)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    opt.step()


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


def measure(step):
    step(); step(); sync()
    t0 = time.perf_counter()
    step(); sync()
    one = max(time.perf_counter() - t0, 1e-4)
    k = max(1, int(budget / 4 / one))
    best, spent = math.inf, 0.0
    while spent < budget:
        t1 = time.perf_counter()
        for _ in range(k):
            step()
        sync()
        dt = time.perf_counter() - t1
        spent += dt
        best = min(best, dt / k)
    return batch / best


def main():
    name_dev = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(f"# torch {torch.__version__} on {device} ({name_dev}), batch {batch}, {budget:g} s per benchmark", flush=True)
    torch.manual_seed(1)
    for mname, build, shape in (("lenet", LeNet, (batch, 1, 28, 28)), ("resnet_small", ResNetSmall, (batch, 3, 32, 32))):
        for kind in ("train", "acet"):
            name = f"{mname}_{kind}"
            if only and only not in name:
                continue
            model = build().to(device)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x = torch.rand(shape, device=device)
            y = torch.randint(0, classes, (batch,), device=device)
            step = plain_step if kind == "train" else acet_step
            ips = measure(lambda: step(model, opt, x, y))
            print(f"BENCH {name} {ips:.1f}", flush=True)


if __name__ == "__main__":
    main()
