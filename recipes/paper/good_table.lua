-- GOOD's Table 1 for any checkpoints (docs/good.md): test accuracy and, for each out-of-
-- distribution set, AUC / AAUC / GAUC in percent: the conservative AUROC (ties count as
-- failures, as GOOD) of the clean in-distribution confidences against the OOD points' clean
-- confidence (AUC), against the most confident point an attack ensemble finds in their
-- eps-ball (AAUC), and against the certified IBP upper bound on that ball (GAUC). Every point
-- is checked to satisfy clean <= attacked <= bound; a violation is an error.
-- usage: build/umbra recipes/paper/good_table.lua CKPT... [--names A,B] [--n 1000]
--          [--eps 0.3] [--attack paper|worst3|suite] [--ood uniform,noise,gray_cifar10]
--          [--data_dir D] [--seed 0] [--threads 2]
local argparse = require "argparse"
local umbra = require "umbra"
local runs = require "umbra.runs"
local data = require "umbra.data"
local noise = require "umbra.noise"
local attack = require "umbra.attack"
local certify = require "umbra.certify"
local eval = require "umbra.eval"

local parser = argparse("good_table", "AUC / AAUC / GAUC of checkpoints, as GOOD's Table 1")
parser:argument("checkpoints", "checkpoints (.h5) or run folders"):args("+")
parser:option("--names", "comma-separated model names for the table (default: the paths)")
parser:option("--n", "in-distribution test images and points of each OOD set", "1000"):convert(math.tointeger)
parser:option("--eps", "l-inf radius of the attacks and of the certificate", "0.3"):convert(tonumber)
parser:option("--attack", "the attack ensemble (attack.worst_case preset): paper | worst3 | suite", "paper")
parser:option("--ood", "comma-separated OOD sets: uniform (U[0,1] noise), noise (the authors' evaluation noise), "
              .. "or umbra data sets", "uniform,noise,gray_cifar10")
parser:option("--data_dir", "data folder (default $UMBRA_DATA or data/)")
parser:option("--seed", "seed of the noise sets and of the attacks' starts", "0"):convert(math.tointeger)
parser:option("--batch_size", "batch size", "128"):convert(math.tointeger)
parser:option("--threads", "CPU threads", "2"):convert(math.tointeger)
local args = parser:parse(arg)
umbra.set_num_threads(args.threads)
local function fail(msg) io.stderr:write("good_table: ", msg, "\n"); os.exit(1) end
if args.n < 1 then fail("--n: expected a positive number, got " .. args.n) end
if args.eps ~= args.eps or args.eps < 0 then fail("--eps: expected a number >= 0, got " .. tostring(args.eps)) end
local presets = {paper = true, worst3 = true, suite = true}
if not presets[args.attack] then fail("--attack: expected paper, worst3 or suite, got " .. args.attack) end
local names = {}
if args.names then for v in args.names:gmatch("[^,]+") do names[#names + 1] = v end end
if args.names and #names ~= #args.checkpoints then
  fail(string.format("--names: %d names for %d checkpoints", #names, #args.checkpoints))
end
local sets = {}
for v in args.ood:gmatch("[^,]+") do sets[#sets + 1] = v end

-- batches of the first n images of a data set (the in-distribution test set, or an OOD set)
local function images_of(ds, n)
  local out = {}
  local done = 0
  for x, y in ds:batches{batch_size = args.batch_size} do
    if done >= n then break end
    if done + x:size(1) > n then x, y = x:narrow(1, 1, n - done), y:narrow(1, 1, n - done) end
    out[#out + 1] = {x = x:clone(), y = y:clone()}   -- the iterator reuses its batch tensors
    done = done + x:size(1)
  end
  return out
end

-- the OOD points of one set as batches, the same for every model
local function ood_batches(name, test_batches, C, H, W)
  local g = umbra.Generator(args.seed + 1)
  if name == "uniform" then
    local out = {}
    for _, b in ipairs(test_batches) do out[#out + 1] = {x = umbra.rand({b.x:size(1), C, H, W}, g)} end
    return out
  elseif name == "noise" then
    local out = {}
    for _, b in ipairs(test_batches) do out[#out + 1] = {x = noise.authors(b.x, g)} end
    return out
  end
  local ds, err = data.load(name, {split = "test", dir = args.data_dir, size = {H, W}})
  if not ds then fail(name .. ": " .. tostring(err)) end
  local c, h, w = ds:shape()
  if c ~= C or h ~= H or w ~= W then
    fail(string.format("%s images are %dx%dx%d, the model takes %dx%dx%d", name, c, h, w, C, H, W))
  end
  return images_of(ds, args.n)
end

local function cat(list) return umbra.cat(list, 1) end

local rows = {}
local dataset, test_batches, ood
for i, path in ipairs(args.checkpoints) do
  local model, info = runs.load_model(path)
  if not model then fail(info) end
  model:evaluate()
  local ds_name = (info.config or {}).dataset
  if not ds_name then fail(path .. ": the checkpoint does not name its data set") end
  if dataset and ds_name ~= dataset then
    fail(string.format("%s is a %s model, the others %s", path, ds_name, dataset))
  end
  if not dataset then
    dataset = ds_name
    local test, err = data.load(dataset, {split = "test", dir = args.data_dir, limit = args.n})
    if not test then fail(err) end
    test_batches = images_of(test, args.n)
    local C, H, W = test:shape()
    ood = {}
    for _, s in ipairs(sets) do ood[s] = ood_batches(s, test_batches, C, H, W) end
  end
  local t0 = umbra.core.clock()
  local conf_in, wrong, count = {}, 0, 0
  for _, b in ipairs(test_batches) do
    local p = model:forward(b.x):softmax(2)
    conf_in[#conf_in + 1] = eval.max_conf(p)
    wrong = wrong + p:argmax(2):float():ne(b.y:float()):sum()
    count = count + b.x:size(1)
  end
  conf_in = cat(conf_in)
  local row = {name = names[i] or path, acc = 1 - wrong / count, sets = {}}
  for _, s in ipairs(sets) do
    local clean, attacked, bound = {}, {}, {}
    for bi, b in ipairs(ood[s]) do
      model:evaluate()
      local c = eval.max_conf(model:forward(b.x):softmax(2))
      local a = attack.worst_case(model, b.x, {eps = args.eps, ensemble = args.attack, seed = args.seed + bi})
      local u = certify.confidence_bound(model, b.x, args.eps)
      for j = 1, c:size(1) do
        if not (c[j] <= a[j] + 1e-5 and a[j] <= u[j] + 1e-5) then
          fail(string.format("%s, %s point %d: clean %.7g, attacked %.7g, bound %.7g: the sandwich is broken",
                             row.name, s, (bi - 1) * args.batch_size + j, c[j], a[j], u[j]))
        end
      end
      clean[#clean + 1], attacked[#attacked + 1], bound[#bound + 1] = c, a, u
    end
    clean, attacked, bound = cat(clean), cat(attacked), cat(bound)
    row.sets[s] = {auc = eval.auroc_conservative(conf_in, clean), aauc = eval.auroc_conservative(conf_in, attacked),
                   gauc = eval.auroc_conservative(conf_in, bound), n = clean:size(1)}
  end
  row.seconds = umbra.core.clock() - t0
  rows[#rows + 1] = row
  io.stderr:write(string.format("%s: %.1f s\n", row.name, row.seconds))
end

print(string.format("%s, first %d test images; eps %g; attack ensemble %s; AUC / AAUC / GAUC in %%, conservative "
                    .. "AUROC (ties count as failures)", dataset, args.n, args.eps, args.attack))
print()
local head, rule = {"| model | acc |"}, {"|---|---|"}
for _, s in ipairs(sets) do
  head[#head + 1] = string.format(" %s (n=%d) |", s, rows[1].sets[s].n)
  rule[#rule + 1] = "---|"
end
print(table.concat(head) .. " seconds |")
print(table.concat(rule) .. "---|")
for _, r in ipairs(rows) do
  local cells = {string.format("| %s | %.2f |", r.name, 100 * r.acc)}
  for _, s in ipairs(sets) do
    local v = r.sets[s]
    cells[#cells + 1] = string.format(" %.1f / %.1f / %.1f |", 100 * v.auc, 100 * v.aauc, 100 * v.gauc)
  end
  print(table.concat(cells) .. string.format(" %.0f |", r.seconds))
end
