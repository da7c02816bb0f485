-- recipes/toy2d.lua: the two-moons experiment (docs/method.md §7, §11.7).
-- Trains the 2-100-100-2 ReLU net with Plain, CEDA and a working ACET (same network,
-- optimiser, seed and number of steps), prints mean max confidence on the training
-- points, on U[0,1]^2 (all, and far from the data), on the ring [-10,10]^2 outside the
-- unit box, on uniform points scaled by alpha (Theorem 3.1) and on adversarial noise, and
-- draws confidence heat maps over [0,1]^2 and [-10,10]^2 into runs/toy2d/.
-- Usage: umbra recipes/toy2d.lua [--steps N] [--seed S] [--out DIR] [--no-plots] [--quiet]
local umbra = require "umbra"
local argparse = require "argparse"
local train = require "umbra.train"
local attack = require "umbra.attack"
local plot = require "umbra.plot"
local optim = require "umbra.optim"
local noise = require "umbra.noise"

local parser = argparse("toy2d", "Plain, CEDA and ACET on two moons")
parser:option("--steps", "optimiser steps for every method", "1000"):convert(tonumber)
parser:option("--seed", "seed of data, initialisation and noise", "1"):convert(tonumber)
parser:option("--n", "number of training points", "2000"):convert(tonumber)
parser:option("--out", "output folder", "runs/toy2d")
parser:option("--noise-frac", "noise points per training point (the notebook: 2)", "2"):convert(tonumber)
parser:option("--acet-eps", "ACET ball radius (l-inf; the notebook's 0.025)", "0.025"):convert(tonumber)
parser:option("--acet-steps", "ACET PGD iterations (the notebook's 4)", "4"):convert(tonumber)
parser:option("--acet-step", "ACET PGD step size (the notebook's 0.02)", "0.02"):convert(tonumber)
parser:option("--adv-eps", "radius of the evaluation's adversarial noise (default: the ACET radius)"):convert(tonumber)
parser:option("--threads", "threads (the batches are small: one thread is fastest)", "1"):convert(tonumber)
parser:flag("--no-plots", "skip the gnuplot pictures")
parser:flag("--quiet", "print only the table")
local args = parser:parse(arg)
umbra.set_num_threads(args.threads)
args.adv_eps = args.adv_eps or args.acet_eps

--- sklearn.datasets.make_moons(n, noise=0.02, shuffle=True), then the notebook's affine map.
local function two_moons(n, sd, g)
  local n_out = n // 2
  local n_in = n - n_out
  local pts, labels = {}, {}
  for i = 0, n_out - 1 do
    local t = math.pi * i / (n_out - 1)
    pts[#pts + 1] = {math.cos(t), math.sin(t)}
    labels[#labels + 1] = 1
  end
  for i = 0, n_in - 1 do
    local t = math.pi * i / (n_in - 1)
    pts[#pts + 1] = {1 - math.cos(t), 1 - math.sin(t) - 0.5}
    labels[#labels + 1] = 2
  end
  local perm = g:permutation(n)
  local xs, ys = {}, {}
  for i = 1, n do
    local j = perm[i]
    local p = pts[j]
    local x1 = p[1] + sd * g:normal()
    local x2 = p[2] + sd * g:normal()
    x1, x2 = (x1 + 1.6) / 4, (x2 + 1.6) / 4
    x1 = x1 - 0.035
    x2 = (x2 - 0.17) * 1.75
    xs[i] = {x1, x2}
    ys[i] = labels[j]
  end
  return umbra.tensor(xs), umbra.tensor(ys, "int64")
end

local function max_conf(model, x)
  model:evaluate()
  local p = model:forward(x):softmax(2):max(2)
  return p
end

local function mmc(model, x) return max_conf(model, x):mean() end

local function accuracy(model, x, y)
  model:evaluate()
  local pred = model:forward(x):argmax(2)
  return 1 - pred:float():ne(y:float()):mean()
end

local g_data = umbra.Generator(args.seed)
local X, Y = two_moons(args.n, 0.02, g_data)

-- evaluation sets, the same for every model
local g_eval = umbra.Generator(args.seed + 1000)
local U = umbra.rand({10000, 2}, g_eval)
local function far_from_data(pts, min_dist)
  local keep = {}
  local xt, pt = X:to_table(), pts:to_table()
  for i = 1, #pt do
    local best = math.huge
    for j = 1, #xt do
      local dx, dy = pt[i][1] - xt[j][1], pt[i][2] - xt[j][2]
      local d = dx * dx + dy * dy
      if d < best then best = d end
    end
    if best > min_dist * min_dist then keep[#keep + 1] = pt[i] end
  end
  return umbra.tensor(keep)
end
local U_far = far_from_data(U:narrow(1, 1, 3000), 0.2)
-- starts of the adversarial noise: uniform points whose eps-ball stays clear of the data
local U_adv = far_from_data(U:narrow(1, 3001, 3000), 2 * args.adv_eps)
local ring = {}
while #ring < 10000 do
  local a, b = -10 + 20 * g_eval:uniform(), -10 + 20 * g_eval:uniform()
  if not (a >= 0 and a <= 1 and b >= 0 and b <= 1) then ring[#ring + 1] = {a, b} end
end
local Ring = umbra.tensor(ring)

local methods = {
  {name = "Plain", settings = {at_frac = 0, pgd_niter = 0}},
  {name = "CEDA", settings = {at_frac = args.noise_frac, pgd_niter = 0, loss = "max_conf"}},
  {name = "ACET", settings = {at_frac = args.noise_frac, pgd_niter = args.acet_steps, pgd_eps = args.acet_eps,
                              pgd_step = args.acet_step, loss = "max_conf"}},
}

local mlp = require "models.mlp"
local results = {}
local t_start = os.clock()
for _, m in ipairs(methods) do
  local g = umbra.Generator(args.seed + 1)
  local model = mlp{sizes = {2, 100, 100, 2}, generator = g}
  local opt = optim.Adam(model:parameters(), {lr = 0.01})
  local s = {}
  for k, v in pairs(m.settings) do s[k] = v end
  s.generator = g
  s.noise_schedule = noise.schedule.uniform()
  s.noise_weight = 1   -- the notebook's form: mean CE + mean log max conf on noise
  local proc = train.Procedure(model, opt, s)
  local last
  for step = 1, args.steps do
    last = proc:step(X, Y)
    if not args.quiet and (step % 200 == 0 or step == args.steps) then
      io.write(string.format("%-5s step %4d  loss %.4f  clean %.4f  noise %.4f  err %.4f\n", m.name, step,
                             last.loss, last.loss_clean, last.loss_out, last.err))
    end
  end
  model:evaluate()
  local adv = attack.pgd(model, U_adv, {eps = args.adv_eps, step = args.adv_eps / 5, steps = 20, objective = "max_conf",
                                            generator = umbra.Generator(args.seed + 7)})
  local r = {name = m.name, model = model, acc = accuracy(model, X, Y), train = mmc(model, X),
             uniform = mmc(model, U), far = mmc(model, U_far), ring = mmc(model, Ring),
             adv = mmc(model, adv)}
  for _, a in ipairs{10, 100, 1000} do r["alpha" .. a] = mmc(model, U * a) end
  results[#results + 1] = r
end

local header = "| model | train acc | MMC train | MMC U[0,1]² | MMC U far (d>0.2) | MMC ring [-10,10]² "
               .. "| α=10 | α=100 | α=1000 | MMC adv. noise far |"
print(string.format("\ntwo moons, n=%d, %d steps each, seed %d, %.1f s CPU; adversarial noise: l-inf eps %g "
                    .. "around uniform points at distance > 2 eps from the data",
                    args.n, args.steps, args.seed, os.clock() - t_start, args.adv_eps))
print(header)
print("|" .. string.rep("---|", 10))
for _, r in ipairs(results) do
  print(string.format("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |", r.name, r.acc, r.train,
                      r.uniform, r.far, r.ring, r.alpha10, r.alpha100, r.alpha1000, r.adv))
end

-- machine-readable copy for tests and the README
os.execute("mkdir -p '" .. args.out .. "'")
local f = assert(io.open(args.out .. "/results.csv", "w"))
f:write("model,train_acc,mmc_train,mmc_uniform,mmc_far,mmc_ring,mmc_alpha10,mmc_alpha100,mmc_alpha1000,mmc_adv_noise\n")
for _, r in ipairs(results) do
  f:write(string.format("%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", r.name, r.acc, r.train, r.uniform,
                        r.far, r.ring, r.alpha10, r.alpha100, r.alpha1000, r.adv))
end
f:close()

if args.no_plots then return end
if not plot.available() then
  io.stderr:write("warning: gnuplot is not installed (apt-get install gnuplot-nox), so no pictures were made\n")
  return
end

local function grid(lo, hi, n)
  local xs, pts = {}, {}
  for i = 0, n - 1 do xs[#xs + 1] = lo + (hi - lo) * i / (n - 1) end
  for j = 1, n do for i = 1, n do pts[#pts + 1] = {xs[i], xs[j]} end end
  return xs, umbra.tensor(pts)
end

local xt, yt = X:to_table(), Y:to_table()
local class_pts = {{}, {}}
for i = 1, #xt do local c = class_pts[yt[i]]; c[#c + 1] = {xt[i][1], xt[i][2]} end
local made = {}
for _, r in ipairs(results) do
  for _, range in ipairs{{0, 1}, {-10, 10}} do
    local xs, pts = grid(range[1], range[2], 200)
    local conf = (max_conf(r.model, pts) * 100):to_table()
    local path = string.format("%s/%s_%g_%g.png", args.out, r.name:lower(), range[1], range[2])
    local ok, err = plot.heatmap{
      path = path, grid = {xs = xs, ys = xs, values = conf}, zrange = {50, 100}, levels = 10,
      title = string.format("%s: max confidence (%%) on [%g,%g]^2", r.name, range[1], range[2]),
      cblabel = "confidence (%)", xlabel = "x_1", ylabel = "x_2",
      box = {-0.01, -0.01, 1.01, 1.01}, box_title = "unit box [0,1]^2 (the data's domain)",
      points = {{path = path .. ".c1", rows = class_pts[1], style = "pt 7 ps 0.3 lc rgb 'red'",
                 title = "class 1"},
                {path = path .. ".c2", rows = class_pts[2], style = "pt 5 ps 0.3 lc rgb 'green'",
                 title = "class 2"}},
    }
    if ok then made[#made + 1] = path else io.stderr:write("warning: ", err, "\n") end
  end
end
print("\npictures:")
for _, p in ipairs(made) do print("  " .. p) end
