"""The PyTorch side of bench_models.lua (run by scripts/bench/run-all with Debian's
python3-torch): the same LeNet and ResNetSmall (TF `same` padding, including the
asymmetric padding of the stride-2 convolutions, avg-pool + channel-pad shortcuts), the
same measurements and key names. Each model runs in a child process for its peak RSS.
Usage: /usr/bin/python3 scripts/bench/bench_models_torch.py THREADS [MODEL]"""
import resource
import subprocess
import sys
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F


class LeNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = tnn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = tnn.Linear(7 * 7 * 64, 1024)
        self.fc2 = tnn.Linear(1024, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def bn(c):
    return tnn.BatchNorm2d(c, momentum=0.01, eps=1.001e-5)   # TF momentum 0.99


class Unit(tnn.Module):
    def __init__(self, c_in, c_out, stride, shared):
        super().__init__()
        self.c_in, self.c_out, self.stride, self.shared = c_in, c_out, stride, shared
        self.bn1, self.bn2 = bn(c_in), bn(c_out)
        self.conv1 = tnn.Conv2d(c_in, c_out, 3, stride, padding=1 if stride == 1 else 0, bias=False)
        self.conv2 = tnn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        shortcut = a if self.shared else x
        h = a if self.stride == 1 else F.pad(a, (0, 1, 0, 1))   # TF same at stride 2
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        if self.c_in != self.c_out:
            p = (self.c_out - self.c_in) // 2
            shortcut = F.pad(F.avg_pool2d(shortcut, self.stride, self.stride), (0, 0, 0, 0, p, p))
        return h + shortcut


class ResNetSmall(tnn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = tnn.Conv2d(3, 16, 3, padding=1, bias=False)
        widths, strides, units = [16, 16, 32, 64], [1, 2, 2], []
        for s in range(3):
            for u in range(3):
                c_in = widths[s] if u == 0 else widths[s + 1]
                units.append(Unit(c_in, widths[s + 1], strides[s] if u == 0 else 1, u == 0))
        self.units = tnn.Sequential(*units)
        self.bn = bn(64)
        self.fc = tnn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.units(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def best_of(reps, fn):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def run(name, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    batch = 128
    if name == "lenet":
        model, x = LeNet(), torch.rand(batch, 1, 28, 28)
    else:
        model, x = ResNetSmall(), torch.rand(batch, 3, 32, 32)
    y = torch.arange(batch) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    reps = 10 if name == "lenet" else 6

    def out(key, value, fmt="%.1f"):
        print(("%s_%s " + fmt) % (name, key, value))

    model.train()

    def forward():
        with torch.no_grad():
            model(x)
    out("forward_ms", best_of(reps, forward))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    t = best_of(reps, step)
    out("train_step_ms", t)
    out("train_img_per_s", batch / t * 1000, "%.0f")

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def input_grad():
        xx = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xx), y), xx)
    t = best_of(reps, input_grad)
    out("fwd_input_grad_ms", t)
    out("fwd_input_grad_img_per_s", batch / t * 1000, "%.0f")

    # backward alone, parameter and input gradients, against the input gradient alone
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    xx = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xx), y)
    out("backward_ms", best_of(reps, lambda: loss.backward(retain_graph=True)))
    for p in model.parameters():
        p.requires_grad_(False)
    xx = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xx), y)
    out("backward_input_ms", best_of(reps, lambda: torch.autograd.grad(loss, xx, retain_graph=True)))
    out("peak_rss_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "%.0f")


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    if len(sys.argv) > 2:
        run(sys.argv[2], threads)
        return
    for name in ("lenet", "resnet_small"):
        sys.stdout.write(subprocess.run([sys.executable, __file__, str(threads), name], check=True,
                                        capture_output=True, text=True).stdout)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
