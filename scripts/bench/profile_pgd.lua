-- Per-layer profile of one PGD iteration (evaluation-mode forward + input gradient, batch
-- 128) of LeNet and ResNetSmall: per layer the forward and input-gradient time, the FLOPs
-- executed (Winograd's products and transforms as run, not the direct convolution's
-- count), GFLOP/s against the sgemm peak of 1 and 2 cores, and for the memory-bound passes
-- (batch norm, ReLU, pooling, padding, residual adds) GB/s against a STREAM-like
-- measurement. Prints the Markdown table of docs/performance.md §2.4. Needs a quiet
-- machine: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE build/umbra scripts/bench/profile_pgd.lua 1`
-- and `... 2`: the kernels scripts/bench/run-all times with (it unsets both; where they are
-- set, as this workplace pins OpenBLAS to its Haswell kernels, the sgemms run slower).
--
-- Each leaf layer is timed alone on the input it sees in the model (best of ROUNDS), its
-- input gradient likewise, the model walked as its containers run it (Sequential in
-- order; Residual y = main(p) + shortcut(p), p = pre(x) or x). Folded passes (BN + ReLU,
-- ReLU + MaxPool backward, and a Residual's add of the gradients taken into the BN + ReLU
-- fold opening its main branch), which the whole model runs, appear here as their parts;
-- the last rows compare the sum of the layers with the whole model's own passes.
-- Usage: umbra scripts/bench/profile_pgd.lua [THREADS [MODEL [ROUNDS]]]
local umbra = require "umbra"
local threads = tonumber(arg[1] or "1")
local only = arg[2]
local rounds = tonumber(arg[3] or "5")
if not threads or not rounds or (only and only ~= "lenet" and only ~= "resnet_small") then
  error("usage: profile_pgd.lua [THREADS [lenet|resnet_small [ROUNDS]]], got " .. table.concat(arg, " "))
end
local batch = tonumber(os.getenv("PROFILE_BATCH") or "128")   -- smaller only to check that it runs
local g = umbra.Generator(1)

local best_of = dofile("scripts/bench/best_of.lua")

-- ---- the machine: sgemm peak at 1 and 2 threads, STREAM-like bandwidth ----------------

local function sgemm_gflops(t)
  umbra.set_num_threads(t)
  local n = 1024
  local a, b = umbra.rand({n, n}, g), umbra.rand({n, n}, g)
  local dt = best_of(5, function() local c = a:matmul(b); c:free() end)
  return 2 * n ^ 3 / dt / 1e9
end

-- triad-like a = a + b over 2 x 64 MB (far beyond the caches): 12 bytes per element
local function stream_GBps(t)
  umbra.set_num_threads(t)
  local n = 16 * 1024 * 1024
  local a, b = umbra.rand({n}, g), umbra.rand({n}, g)
  local dt = best_of(10, function() a:add_(b) end)
  return 12 * n / dt / 1e9
end

local peak1, peak2 = sgemm_gflops(1), sgemm_gflops(2)
local bw = stream_GBps(threads)
umbra.set_num_threads(threads)

-- ---- FLOPs and bytes per layer ----------------------------------------------------------

local function numel(s) local n = 1 for _, v in ipairs(s) do n = n * v end return n end
local function ceil_div(a, b) return (a + b - 1) // b end
-- transform flops per tile and channel (input, output), counted from winograd.c and
-- winograd_a6.c (an FMA as 2); the transforms run over whole vectors of 8 tiles per tile row
local transforms = {
  ["winograd F(2x2,3x3)"] = {m = 2, a = 4, input = 32, output = 28},
  ["winograd F(4x4,3x3)"] = {m = 4, a = 6, input = 288, output = 146},
  ["winograd F(2x2,5x5)"] = {m = 2, a = 6, input = 288, output = 76},
}

-- executed flops of a convolution c_in -> c_out, k x k, producing (n, c_out, oh, ow), by path
local function conv_flops(path, n, c_in, c_out, k, oh, ow)
  local t = transforms[path]
  if not t then return 2 * n * c_out * c_in * k * k * oh * ow end   -- im2col, per tap, sgemm
  local ty, tx = ceil_div(oh, t.m), ceil_div(ow, t.m)
  local lanes = ty * ceil_div(tx, 8) * 8
  return n * (2 * ty * tx * t.a * t.a * c_in * c_out + lanes * (c_in * t.input + c_out * t.output))
end

-- {forward flops, input-gradient flops, forward bytes, input-gradient bytes, note}
local function costs(m, x, y)
  local kind, nx, ny = m:type(), numel(x:size()), numel(y:size())
  if kind == "Conv2d" then
    local w = m.weight:size()
    local s, o = x:size(), y:size()
    local fwd, bwd = m:kernel_paths(s)
    -- the input gradient: an sgemm per image into columns summed back by col2im (on the
    -- output plane), or a convolution of gy producing the input plane
    local direct_gx = bwd:find("^sgemm")
    return {conv_flops(fwd, s[1], w[2], w[1], w[3], o[3], o[4]),
            conv_flops(bwd, s[1], w[1], w[2], w[3], direct_gx and o[3] or s[3], direct_gx and o[4] or s[4]),
            nil, nil, fwd .. " / " .. bwd}
  elseif kind == "Linear" then
    local w = m.weight:size()
    return {2 * x:size(1) * w[1] * w[2], 2 * x:size(1) * w[1] * w[2]}
  elseif kind == "BatchNorm2d" then   -- y = x a + b; gx = gy a
    return {2 * nx, nx, 8 * nx, 8 * nx}
  elseif kind == "ReLU" then          -- gx = gy where x > 0: reads x and gy
    return {nx, nx, 8 * nx, 12 * nx}
  end
  -- pooling, padding, flatten: one read of the larger side and one write of the other
  return {nx, nx, 4 * (nx + ny), 4 * (nx + ny)}
end

-- ---- walking the model as its containers run it ------------------------------------------

local rows = {}
local function leaf(path, m, x)
  local y = m:forward(x)
  local row = {path = path, m = m, x = x, y = y}
  row.fwd_s = best_of(rounds, function() m:forward(x) end)
  rows[#rows + 1] = row
  return y
end

local function run(path, m, x)
  local kind = m:type()
  if kind == "Sequential" then
    for i, child in ipairs(m:children()) do
      x = run(path .. (path == "" and "" or ".") .. umbra.core.nn_core.methods.child_name(m, i), child, x)
    end
    return x
  elseif kind == "Residual" then
    local p = x
    if m.pre then p = run(path .. ".pre", m.pre, x) end
    local a = run(path .. ".main", m.main, p)
    local b = m.shortcut and run(path .. ".shortcut", m.shortcut, p) or p
    local y = a + b
    rows[#rows + 1] = {path = path .. " (add)", add = {a, b}, y = y,
                       fwd_s = best_of(rounds, function() local s = a + b; s:free() end)}
    return y
  end
  return leaf(path, m, x)
end

-- input gradients in reverse order: each leaf's backward_input on its own input, with a
-- gradient of its output's shape (values do not change the time)
local function backward_times()
  for i = #rows, 1, -1 do
    local r = rows[i]
    local gy = umbra.rand(r.y:size(), g) - 0.5
    if r.add then   -- the residual add's backward: the gradient goes to both branches, and p's sum
      local a, b = gy:clone(), gy:clone()
      r.bwd_s = best_of(rounds, function() local s = a + b; s:free() end)
    else
      r.bwd_s = best_of(rounds, function() r.m:backward_input(r.x, gy) end)
    end
  end
end

local function fmt_rate(v, unit) return v and string.format("%.1f %s", v, unit) or "" end

local function profile(name)
  local model, x
  if name == "lenet" then
    model, x = require("models.lenet"){generator = g}, umbra.rand({batch, 1, 28, 28}, g)
  else
    model, x = require("models.resnet_small"){generator = g}, umbra.rand({batch, 3, 32, 32}, g)
  end
  model:evaluate()
  rows = {}
  run("", model, x)
  backward_times()
  local gz = umbra.rand(model:forward(x):size(), g)
  local whole_fwd = best_of(rounds, function() model:forward(x) end)
  local whole_bwd = best_of(rounds, function() model:forward(x); model:backward_input(x, gz) end) - whole_fwd

  print(string.format("\n#### %s, batch %d, %d thread(s)\n", name, batch, threads))
  print("| layer | path (forward / input gradient) | forward ms | input grad ms | GFLOP fwd / grad | "
        .. "GFLOP/s fwd / grad | % of peak | GB/s fwd / grad | % of bandwidth |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
  local peak = threads == 1 and peak1 or peak2
  local sum_f, sum_b = 0, 0
  for _, r in ipairs(rows) do
    local c
    if r.add then
      local n = numel(r.y:size())
      c = {n, n, 12 * n, 12 * n}
    else
      c = costs(r.m, r.x, r.y)
    end
    sum_f, sum_b = sum_f + r.fwd_s, sum_b + r.bwd_s
    local label = r.add and "add" or r.m:describe()
    local gf, gb = c[1] / r.fwd_s / 1e9, c[2] / r.bwd_s / 1e9
    local compute = c[3] == nil
    print(string.format("| %s %s | %s | %.2f | %.2f | %.3f / %.3f | %s | %s | %s | %s |",
      r.path, label, c[5] or "", r.fwd_s * 1e3, r.bwd_s * 1e3, c[1] / 1e9, c[2] / 1e9,
      string.format("%.1f / %.1f", gf, gb),
      compute and string.format("%.0f / %.0f %%", 100 * gf / peak, 100 * gb / peak) or "",
      compute and "" or string.format("%.1f / %.1f", c[3] / r.fwd_s / 1e9, c[4] / r.bwd_s / 1e9),
      compute and "" or string.format("%.0f / %.0f %%", 100 * c[3] / r.fwd_s / 1e9 / bw,
                                      100 * c[4] / r.bwd_s / 1e9 / bw)))
  end
  print(string.format("| sum of the layers | | %.2f | %.2f | | | | | |", sum_f * 1e3, sum_b * 1e3))
  print(string.format("| whole model (its own passes, folds included) | | %.2f | %.2f | | | | | |",
                      whole_fwd * 1e3, whole_bwd * 1e3))
end

print(string.format("machine: OpenBLAS sgemm 1024^3 peak %s (1 thread), %s (2 threads); "
                    .. "STREAM-like a += b %s (%d thread(s)); OPENBLAS_CORETYPE %s",
                    fmt_rate(peak1, "GFLOP/s"), fmt_rate(peak2, "GFLOP/s"), fmt_rate(bw, "GB/s"), threads,
                    os.getenv("OPENBLAS_CORETYPE") or "unset (OpenBLAS picks its kernels)"))
for _, name in ipairs{"lenet", "resnet_small"} do
  if not only or only == name then profile(name) end
end
