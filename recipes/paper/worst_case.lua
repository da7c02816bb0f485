-- recipes/paper/worst_case.lua: the worst case of one checkpoint's confidence on the first
-- --n noise points (docs/worst-case.md): per point the clean confidence, each attack of an
-- ensemble, the ensemble's best and certified bounds, written as a Lua table (read by
-- recipes/paper/worst_case_table.lua) after every batch, so an interrupted run keeps its points.
-- Noise: the authors' recipe on the first --n test images of the checkpoint's data set; where
-- that set is absent, the recipe on uniform noise only (frac_perm 0) and no AUCs.
-- Usage: umbra recipes/paper/worst_case.lua CKPT --out FILE [--attack paper|worst3_extra|suite_extra|...] [--n 1000]
local umbra = require "umbra"
local argparse = require "argparse"
local data = require "umbra.data"
local noise = require "umbra.noise"
local runs = require "umbra.runs"
local attack, certify, eval = umbra.attack, umbra.certify, umbra.eval

local parser = argparse("worst_case", "Attack ensemble and certified bounds on the first noise points of a checkpoint")
parser:argument("checkpoint", "an umbra checkpoint (.h5)")
parser:option("--out", "the result file (a Lua table)"):args(1)
parser:option("--attack", "paper | worst3 | suite | worst3_extra | suite_extra (the members worst3 adds to paper, "
              .. "the suite to worst3, seeds as in the whole preset: merged by worst_case_table.lua)", "worst3")
parser:option("--n", "noise points", "1000"):convert(math.tointeger)
parser:option("--n_test", "clean test images for the in-distribution confidences", "1000"):convert(math.tointeger)
parser:option("--batch_size", "points per attack batch", "125"):convert(math.tointeger)
parser:option("--eps", "l-inf radius of the attacks", "0.3"):convert(tonumber)
parser:option("--certify", "comma-separated eps of the certified bounds", "0.3,0.01")
parser:option("--apgd_steps", "APGD iterations (suite)", "500"):convert(math.tointeger)
parser:option("--apgd_restarts", "APGD restarts (suite)", "5"):convert(math.tointeger)
parser:option("--mpgd_steps", "MPGD iterations per start (suite)", "200"):convert(math.tointeger)
parser:option("--dataset", "in-distribution set (default: the checkpoint's)")
parser:option("--data_dir", "data folder (default $UMBRA_DATA or data/)")
parser:option("--seed", "seed of the noise and the attacks", "0"):convert(math.tointeger)
parser:option("--model_file", "a file returning the model's builder, for architectures not in models/")
parser:option("--threads", "CPU threads", "2"):convert(math.tointeger)
local args = parser:parse(arg)
umbra.set_num_threads(args.threads)
local function fail(msg) io.stderr:write("worst_case: ", msg, "\n"); os.exit(1) end
if not args.out then fail("--out FILE is required") end
if args.n < 1 or args.batch_size < 1 then fail("--n and --batch_size: expected positive numbers") end

local model, info = runs.load_model(args.checkpoint, {model_file = args.model_file})
if not model then fail(info) end
model:evaluate()
local dataset = args.dataset or (info.config or {}).dataset
local C, H, W = table.unpack(runs.input_shape(info))

local presets = attack.ensemble_presets{apgd_steps = args.apgd_steps, apgd_restarts = args.apgd_restarts,
                                        mpgd_steps = args.mpgd_steps}
-- X_extra: the members of preset X after those of the preset it extends, with the seeds they
-- have inside X, so that files of paper, worst3_extra and suite_extra merge into worst3 and suite
local extends = {worst3_extra = {"worst3", "paper"}, suite_extra = {"suite", "worst3"}}
local members, seed = presets[args.attack], args.seed
if extends[args.attack] then
  local whole, base = presets[extends[args.attack][1]], presets[extends[args.attack][2]]
  members = {table.unpack(whole, #base + 1)}
  seed = args.seed + #base   -- member i of this list is member #base + i of the whole preset
elseif not members then
  fail("--attack: expected paper, worst3, suite, worst3_extra or suite_extra, got " .. args.attack)
end
local eps_list = {}
for e in args.certify:gmatch("[^,]+") do
  local v = tonumber(e)
  if not v or v < 0 then fail("--certify: expected eps >= 0, got " .. e) end
  eps_list[#eps_list + 1] = v
end

-- in-distribution confidences and the noise batches
local g = umbra.Generator(args.seed)
local test = dataset and data.load(dataset, {split = "test", dir = args.data_dir,
                                            limit = math.max(args.n, args.n_test)})
local conf_in, batches, source = {}, {}
if test then
  source = "authors' recipe on the " .. dataset .. " test images"
  local done = 0
  for x in test:batches{batch_size = args.batch_size} do
    local c = eval.max_conf(model:forward(x):softmax(2)):to_table()
    for i = 1, #c do if #conf_in < args.n_test then conf_in[#conf_in + 1] = c[i] end end
    if done < args.n then
      local z = noise.authors(x, g)
      if done + z:size(1) > args.n then z = z:narrow(1, 1, args.n - done):contiguous() end
      batches[#batches + 1] = z
      done = done + z:size(1)
    end
  end
  if done < args.n then fail(string.format("--n %d: the test set has only %d images", args.n, done)) end
else
  source = "authors' recipe on uniform noise only (frac_perm 0; " .. tostring(dataset) .. " test set absent)"
  conf_in = nil
  -- whole batches, the last narrowed (as the test-set path): the recipe's draws depend on the
  -- batch's size, so stages of different --n see the same first points
  for s = 1, args.n, args.batch_size do
    local z = noise.authors(umbra.zeros({args.batch_size, C, H, W}), g, {frac_perm = 0})
    if s + args.batch_size - 1 > args.n then z = z:narrow(1, 1, args.n - s + 1):contiguous() end
    batches[#batches + 1] = z
  end
end

local function list(t)
  local s = {}
  for i = 1, #t do s[i] = string.format("%.9g", t[i]) end
  return "{" .. table.concat(s, ",") .. "}"
end
local res = {clean = {}, best = {}, winner = {}, members = {}, escapes = {}, bounds = {}}
local names
for k = 1, #eps_list do res.bounds[k] = {} end
local function append(dst, t) for i = 1, #t do dst[#dst + 1] = t[i] end end

local function save(done, wall)
  local f = assert(io.open(args.out .. ".tmp", "w"))
  f:write("return {\n")
  f:write(string.format("checkpoint = %q, attack = %q, noise = %q, eps = %.9g, seed = %d, n = %d, batch_size = %d,\n",
          args.checkpoint, args.attack, source, args.eps, args.seed, done, args.batch_size))
  f:write(string.format("apgd_steps = %d, apgd_restarts = %d, mpgd_steps = %d, wall_s = %.1f,\n",
          args.apgd_steps, args.apgd_restarts, args.mpgd_steps, wall))
  f:write("names = {")
  for _, nm in ipairs(names) do f:write(string.format("%q, ", nm)) end
  f:write("},\nescapes = {")
  for _, nm in ipairs(names) do f:write(string.format("[%q] = %d, ", nm, res.escapes[nm] or 0)) end
  f:write("},\n")
  f:write("certify = ", list(eps_list), ",\n")
  if conf_in then f:write("conf_in = ", list(conf_in), ",\n") end
  f:write("clean = ", list(res.clean), ",\nbest = ", list(res.best), ",\nwinner = ", list(res.winner), ",\n")
  f:write("members = {\n")
  for i = 1, #names - 1 do f:write("  ", list(res.members[i]), ",\n") end
  f:write("},\nbounds = {\n")
  for k = 1, #eps_list do f:write("  ", list(res.bounds[k]), ",\n") end
  f:write("},\n}\n")
  f:close()
  assert(os.rename(args.out .. ".tmp", args.out))
end

local t0, done = umbra.core.clock(), 0
for _, z in ipairs(batches) do
  local clean = eval.max_conf(model:forward(z):softmax(2))
  local best, _, win, rep = attack.worst_case(model, z, {eps = args.eps, ensemble = members, seed = seed})
  names = rep.names
  append(res.clean, clean:to_table())
  append(res.best, best:to_table())
  append(res.winner, win:to_table())
  for i = 2, #names do
    res.members[i - 1] = res.members[i - 1] or {}
    append(res.members[i - 1], rep.conf[names[i]]:to_table())
    res.escapes[names[i]] = (res.escapes[names[i]] or 0) + rep.escapes[names[i]]
  end
  for k, e in ipairs(eps_list) do append(res.bounds[k], certify.confidence_bound(model, z, e):to_table()) end
  done = done + z:size(1)
  save(done, umbra.core.clock() - t0)
  io.stderr:write(string.format("worst_case %s: %d / %d points, %.0f s\n", args.attack, done, args.n,
                                umbra.core.clock() - t0))
end
print(string.format("wrote %s: %d points, %s, %.0f s", args.out, done, args.attack, umbra.core.clock() - t0))
