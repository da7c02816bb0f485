# PyTorch (CPU) counterpart of bench_tensor.lua; run with Debian's /usr/bin/python3.
# Usage: bench_tensor_torch.py THREADS ; prints "name value" lines.
import sys, time, torch
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(1)

def best_of(reps, fn):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0)
    return best

for n in (256, 512, 1024, 2048):
    a, b = torch.rand(n, n), torch.rand(n, n)
    reps = 20 if n <= 512 else (5 if n <= 1024 else 2)
    inner = 20 if n <= 256 else 1
    def f():
        for _ in range(inner):
            torch.mm(a, b)
    dt = best_of(reps, f) / inner
    print("matmul_%d %.2f" % (n, 2 * n ** 3 / dt / 1e9))

n = 16 * 1024 * 1024
x, y = torch.rand(n), torch.rand(n)
out = x.clone()
def g():
    out.copy_(x); out.add_(y)
dt = best_of(10, g)
print("add_GBps %.2f" % (5 * 4 * n / dt / 1e9))
small = torch.ones(4)
iters = 200000
t0 = time.process_time()
for _ in range(iters):
    small.add_(1)
print("small_op_us %.3f" % ((time.process_time() - t0) / iters * 1e6))
