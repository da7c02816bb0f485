# One ACET training step in PyTorch (CPU), written the usual way: LeNet as the paper's
# (5x5 convs 32/64 with SAME padding, 2x2 max-pools, fc 3136-1024-10), 128 clean + 128
# noise images (permutation/uniform noise, 15x15 Gaussian blur with mirror padding,
# rescale), 40 PGD sign steps of 0.0075 in the 0.3 ball maximising log max softmax with
# the model in eval mode and the best iterate kept, then one Adam step on [noise; clean]
# with weight decay 5e-4 * sum w^2. Usage: THREADS ; prints "acet_step_s SECONDS".
import sys, time, math, torch
import torch.nn as nn
import torch.nn.functional as F
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(1)

class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 5, padding=2)
        self.c2 = nn.Conv2d(32, 64, 5, padding=2)
        self.f1 = nn.Linear(3136, 1024)
        self.f2 = nn.Linear(1024, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))

def make_noise(x):
    n = x.shape[0]; k = n // 2
    perm = torch.stack([torch.randperm(784) for _ in range(k)])
    flat = x[:k].reshape(k, 1, 784)
    permuted = torch.gather(flat, 2, perm.unsqueeze(1)).reshape(k, 1, 28, 28)
    z = torch.cat([permuted, torch.rand(n - k, 1, 28, 28)])
    sigma = 1.0 + 1.5 * torch.rand(1).item()
    t = torch.arange(-7, 8, dtype=torch.float32)
    w = torch.exp(-t ** 2 / (2 * sigma ** 2)); w = w / w.sum()
    kern = (w[:, None] * w[None, :])[None, None]
    zp = F.pad(z, (15, 15, 15, 15), mode="reflect")  # close to TF's SYMMETRIC
    z = F.conv2d(zp, kern, padding=7)[:, :, 15:-15, 15:-15]
    lo = z.flatten(1).min(1)[0].view(-1, 1, 1, 1); hi = z.flatten(1).max(1)[0].view(-1, 1, 1, 1)
    return (z - lo) / (hi - lo)

def log_max_conf(logits):
    return F.log_softmax(logits, 1).max(1)[0]

def pgd(model, z, eps=0.3, steps=40, step=0.0075):
    model.eval()
    s = torch.rand(z.shape[0], 1, 1, 1)
    x = (z + s * (2 * torch.rand_like(z) - 1) * eps).clamp(0, 1)
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
            best[better] = x[better]; best_obj = torch.where(better, obj, best_obj)
            if last: break
            x = x + step * g.sign()
            x = z + (x.clamp(0, 1) - z).clamp(-eps, eps)
    model.train()
    return best.detach()

model = LeNet()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(128, 1, 28, 28)
y = torch.arange(128) % 10

def step():
    z = pgd(model, make_noise(x))
    logits = model(torch.cat([z, x]))
    loss_clean = F.cross_entropy(logits[128:], y, reduction="sum")
    loss_out = log_max_conf(logits[:128]).sum()
    reg = sum((p ** 2).sum() for p in model.parameters())
    loss = (loss_clean + loss_out) / 256 + 5e-4 * reg
    opt.zero_grad(); loss.backward(); opt.step()

step()
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter(); step(); best = min(best, time.perf_counter() - t0)
print("acet_step_s %.3f" % best)
