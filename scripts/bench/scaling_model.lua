-- The scaling model of docs/scaling.md: data-parallel ACET step time on P nodes as the
-- measured one-node compute divided by P plus one ring allreduce of the gradients
-- (2 (P-1) latency terms + 2 (P-1)/P * bytes / bandwidth) and a latency-only allreduce of the
-- step's metrics, for 10 and 100 Gb/s links; efficiency and CIFAR-10 ACET 100-epoch time.
--   lua5.4 scripts/bench/scaling_model.lua STEP_SECONDS [PARAMS] [LAT_10G_US] [LAT_100G_US]
local step_s = assert(tonumber(arg[1]), "give the measured one-node ACET step in seconds")
local params = tonumber(arg[2] or "269722")          -- ResNetSmall, 10 classes
local links = {{name = "10 Gb/s", gbps = 10, lat = tonumber(arg[3] or "50") * 1e-6},
               {name = "100 Gb/s", gbps = 100, lat = tonumber(arg[4] or "5") * 1e-6}}
local steps = 100 * (50000 // 128)                   -- CIFAR-10, 100 epochs of batch 128
local bytes = 4 * params

print(string.format("one node: %.3f s per step, %d steps: %.1f h", step_s, steps, step_s * steps / 3600))
print("")
print("| nodes | link | compute/step | allreduce/step | efficiency | time to train |")
print("|---:|---|---:|---:|---:|---:|")
for _, p in ipairs{8, 32, 128} do
  for _, l in ipairs(links) do
    local compute = step_s / p
    local ring = 2 * (p - 1) * l.lat + 2 * (p - 1) / p * bytes / (l.gbps * 1e9 / 8)
    local metrics = 2 * math.ceil(math.log(p, 2)) * l.lat
    local t = compute + ring + metrics
    print(string.format("| %d | %s | %.1f ms | %.2f ms | %.1f %% | %.2f h |", p, l.name, compute * 1e3,
                        (ring + metrics) * 1e3, 100 * compute / t, t * steps / 3600))
  end
end
