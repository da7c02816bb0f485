-- recipes/evaluate.lua: evaluate a checkpoint as the paper (docs/method.md §5.3, §6, §11.5
-- and §11.9): clean test error and confidences; Noise (the training noise recipe on the test
-- images); Adv. Noise (PGD from that noise maximising log max softmax, eps 0.3, 80 steps of
-- 0.02, random start, best iterate) and beside it a worst case over three attacks on the
-- first 1,024 noise points; Adv. Samples (PGD maximising CE with the true label, same
-- settings); every out-of-distribution set of the training set that is present. Softmax
-- outputs and labels of every set go to <run>/eval.h5 (read by recipes/analyze.lua).
-- --scores msp,maxlogit,energy,odin,mahalanobis adds post-hoc scores of clean, noise and OOD sets,
-- and with --attack each score at the worst point of that ensemble attacking the score itself.
-- Usage: umbra recipes/evaluate.lua CHECKPOINT [--out DIR] [--n_test N] ...
-- Under `mpirun -np N` the batches are dealt out to the ranks and gathered in order; every
-- rank draws every batch's random numbers, so eval.h5 holds the one-process numbers.
local umbra = require "umbra"
local argparse = require "argparse"
local log = require "umbra.log"
local data = require "umbra.data"
local noise = require "umbra.noise"
local attack = require "umbra.attack"
local runs = require "umbra.runs"
local core = require "umbra.core"
local dist = require "umbra.dist"

local parser = argparse("evaluate", "Evaluate a checkpoint on clean, noise, adversarial and out-of-distribution data")
parser:argument("checkpoint", "an umbra checkpoint (.h5)")
parser:option("--out", "folder of eval.h5 (default: the checkpoint's folder)")
parser:option("--dataset", "in-distribution set (default: the checkpoint's configuration)")
parser:option("--ood", "comma-separated out-of-distribution sets (default: the paper's for the data set)")
parser:option("--data_dir", "data folder (default $UMBRA_DATA or data/)")
parser:option("--n_test", "evaluate on the first n test images (and n images of each OOD set)"):convert(math.tointeger)
parser:flag("--drop_last", "drop the last partial batch of 128, as the authors' loaders (9,984 of 10,000)")
parser:option("--batch_size", "batch size", "128"):convert(math.tointeger)
parser:option("--eps", "l-inf radius of every attack", "0.3"):convert(tonumber)
parser:option("--adv_steps", "PGD iterations of Adv. Noise and Adv. Samples", "80"):convert(math.tointeger)
parser:option("--adv_step", "PGD step size of Adv. Noise and Adv. Samples", "0.02"):convert(tonumber)
parser:option("--adv_n", "attack only the first n noise points and test images (Adv. Noise, Adv. Samples; "
              .. "default: all)"):convert(math.tointeger)
parser:option("--worst_n", "noise points attacked by the three-attack worst case (0: skip), by --attack and, with "
              .. "--scores, by --attack on each score", "1024")
  :convert(math.tointeger)
parser:option("--worst_attacks", "the worst case's attacks as steps:size,...", "80:0.02,200:0.0375,500:0.0006")
parser:option("--attack", "worst case on the first --worst_n noise points over an attack ensemble: paper | worst3 "
              .. "| suite (docs/worst-case.md); with --scores also on each score itself")
parser:option("--certify", "certified confidence bound on the same points at this eps (may be repeated)")
  :count("*"):convert(tonumber)
parser:option("--scores", "post-hoc scores on clean, noise and OOD sets: a comma-separated list of "
              .. "msp,maxlogit,energy,odin,mahalanobis (docs/good-and-scores.md)")
parser:option("--energy_T", "Energy's temperature", "1"):convert(tonumber)
parser:option("--odin_T", "ODIN's temperature", "1000"):convert(tonumber)
parser:option("--odin_eps", "ODIN's input step", "0.0014"):convert(tonumber)
parser:option("--mahalanobis_layer", "path of Mahalanobis' features (default: the input of the last layer)")
parser:option("--mahalanobis_eps", "Mahalanobis' input step", "0"):convert(tonumber)
parser:option("--mahalanobis_n", "training images Mahalanobis is fitted on", "5000"):convert(math.tointeger)
parser:option("--holdout", "test images held out to fit Mahalanobis when there is no training set", "1000")
  :convert(math.tointeger)
parser:flag("--no_adv_noise", "skip Adv. Noise")
parser:flag("--no_adv_samples", "skip Adv. Samples")
parser:option("--top", "most confident OOD images kept per set for the picture grid", "64"):convert(math.tointeger)
parser:option("--seed", "seed of the evaluation noise and the attacks' random starts", "0"):convert(math.tointeger)
parser:option("--device", "cpu | cuda", "cpu")
parser:option("--model_file", "a file returning the model's builder, for architectures not in models/")
parser:option("--threads", "CPU threads", "2"):convert(math.tointeger)
local args = parser:parse(arg)
local _, nranks = dist.init()
umbra.set_num_threads(args.threads)
local print = dist.is_main() and print or function() end   -- rank 0 speaks for all
if nranks > 1 then print(string.format("%d ranks x %d threads per rank", nranks, umbra.get_num_threads())) end

local function fail(msg) io.stderr:write("evaluate: ", msg, "\n"); os.exit(1) end
local presets = {paper = true, worst3 = true, suite = true}
if args.attack and not presets[args.attack] then
  fail("--attack: expected paper, worst3 or suite, got " .. args.attack)
end
for _, e in ipairs(args.certify) do
  if e ~= e or e < 0 then fail("--certify: expected eps >= 0, got " .. tostring(e)) end
end
local score_names
if args.scores then
  local serr
  score_names, serr = require("umbra.scores_eval").parse(args.scores)
  if not score_names then fail(serr) end
end
if args.adv_n and args.adv_n < 1 then fail("--adv_n: expected a positive number of points, got " .. args.adv_n) end

if args.device == "cuda" and nranks > 1 then dist.pick_local_gpu() end   -- before CUDA loads
local model, info = runs.load_model(args.checkpoint, {model_file = args.model_file})
if not model then fail(info) end
if args.device ~= "cpu" then model:to(args.device) end
local config = info.config or {}
local dataset = args.dataset or config.dataset
if not dataset then fail("the checkpoint does not name its data set; pass --dataset") end
local out_dir = args.out or args.checkpoint:match("^(.*)/[^/]*$") or "."
os.execute("mkdir -p '" .. out_dir .. "'")

local OOD = {
  mnist = {"fashion_mnist", "emnist_letters", "gray_cifar10"},
  fashion_mnist = {"mnist", "emnist_letters", "gray_cifar10"},
  svhn = {"cifar10", "cifar100", "lsun_classroom", "imagenet_minus"},
  cifar10 = {"svhn", "cifar100", "lsun_classroom", "imagenet_minus"},
  cifar100 = {"svhn", "cifar10", "lsun_classroom", "imagenet_minus"},
}
local ood_names = OOD[dataset] or {}
if args.ood then
  ood_names = {}
  for name in args.ood:gmatch("[^,]+") do ood_names[#ood_names + 1] = name end
end

local test, err = data.load(dataset, {split = "test", dir = args.data_dir, limit = args.n_test})
if not test then fail(err) end
local K = test.num_classes
local C, H, W = test:shape()
local g = umbra.Generator(args.seed)
local t_start = umbra.core.clock()

-- progress on stderr: a bar on a terminal, whole lines every few seconds otherwise
local bars = {}
local function progress(name, done, total)
  bars[name] = bars[name] or log.progress(total, {label = string.format("%-16s", name), stream = io.stderr, every = 5})
  bars[name]:update(done)
  if done >= total then bars[name]:finish() end
end

-- Run fn(x, y) -> probs (n, K) over a data set's batches (the first `limit` images when
-- given); concatenate on the CPU. With several ranks, batch b runs on rank (b - 1) mod N;
-- the others call skip(x, y) (if given) to draw what fn would have drawn.
local function over_batches(name, ds, fn, limit, skip, width)
  local parts, labels, done, mine = {}, {}, 0, {}
  local b = 0
  local total = ds:size()
  if args.drop_last then total = total - total % args.batch_size end
  if limit and limit < total then total = limit end
  for x, y in ds:batches{batch_size = args.batch_size, drop_last = args.drop_last, device = args.device} do
    if done >= total then break end
    if done + x:size(1) > total then
      x, y = x:narrow(1, 1, total - done):contiguous(), y:narrow(1, 1, total - done):contiguous()
    end
    b = b + 1
    if dist.owns(b) then
      local p = fn(x, y)
      parts[#parts + 1] = p:to("cpu")
      labels[#labels + 1] = y:to("cpu"):clone()
      mine[#mine + 1] = b
    elseif skip then
      skip(x, y)
    end
    done = done + x:size(1)
    if dist.is_main() then progress(name, done, total) end
  end
  return dist.gather_batches(parts, mine, {width or K}), dist.gather_batches(labels, mine, {})
end

local function probs_of(x)
  model:evaluate()
  return model:forward(x):softmax(2)
end

local results = {tensors = {}, attrs = {}}
local function store(group, probs, labels, images, image_index)
  results.tensors[group .. "/probs"] = probs
  results.tensors[group .. "/labels"] = labels
  if images then results.tensors[group .. "/images"] = images end
  if image_index then results.tensors[group .. "/image_index"] = image_index end
end

local function zeros_like_labels(labels) return umbra.zeros({labels:size(1)}, "int64") end

-- what an attack draws (its random start) without running it, for batches of other ranks
local function pgd_draws(x, opts)
  local o = {eps = args.eps, generator = g, steps = 0}
  for k, v in pairs(opts) do o[k] = v end
  o.steps = 0
  attack.pgd(model, x, o)
end

local function pgd(x, opts)
  local o = {eps = args.eps, generator = g}
  for k, v in pairs(opts) do o[k] = v end
  return (attack.pgd(model, x, o))
end

-- clean
local clean_probs, clean_labels = over_batches("clean", test, function(x) return probs_of(x) end)
local pred = clean_probs:argmax(2)
local test_error = pred:float():ne(clean_labels:float()):mean()
store("clean", clean_probs, clean_labels)
print(string.format("clean: test error %.4f, mean max confidence %.4f on %d images", test_error,
                    clean_probs:max(2):mean(), clean_labels:size(1)))

-- noise made from the test images (the authors' recipe), kept per batch for the attacks
local noise_batches = {}
local noise_probs, noise_labels = over_batches("noise", test, function(x)
  local z = noise.authors(x, g)
  noise_batches[#noise_batches + 1] = z
  return probs_of(z)
end, nil, function(x) noise_batches[#noise_batches + 1] = noise.authors(x, g) end)
store("noise", noise_probs, zeros_like_labels(noise_labels))

local function over_noise(name, limit, fn, skip, width)
  local parts, done, mine = {}, 0, {}
  for b, z in ipairs(noise_batches) do
    if limit and done >= limit then break end
    if limit and done + z:size(1) > limit then z = z:narrow(1, 1, limit - done):contiguous() end
    if dist.owns(b) then
      parts[#parts + 1] = fn(z):to("cpu")
      mine[#mine + 1] = b
    else
      skip(z)
    end
    done = done + z:size(1)
    if dist.is_main() then progress(name, done, limit or noise_labels:size(1)) end
  end
  local p = dist.gather_batches(parts, mine, {width or K})
  return p, umbra.zeros({p:size(1)}, "int64")
end

-- post-hoc scores: scores/<score>/<set> vectors, Mahalanobis fitted first
local scorer, score_skip, score_opts
local function put(name, t) results.tensors[name] = t end
if score_names then
  local se = require "umbra.scores_eval"
  local fit
  for _, name in ipairs(score_names) do
    if name == "mahalanobis" then
      local ok, train = pcall(data.load, dataset, {split = "train", dir = args.data_dir, limit = args.mahalanobis_n})
      if not ok then train = nil end
      local what
      fit, what = se.fit(model, {train = train, test = test, n = args.mahalanobis_n, holdout = args.holdout,
                                 layer = args.mahalanobis_layer or se.penultimate(model), num_classes = K,
                                 device = args.device})
      results.attrs.scores_fit = what
      print(what)
    end
  end
  score_skip = fit and fit.holdout or 0
  score_opts = {T = args.energy_T, odin_T = args.odin_T, odin_eps = args.odin_eps, maha_eps = args.mahalanobis_eps,
                fit = fit}
  scorer = se.scorer(model, score_names, score_opts)
  local cs = over_batches("scores clean", test, scorer, nil, nil, #score_names)
  se.store(put, score_names, "clean", cs, score_skip)
  local ns = over_noise("scores noise", nil, scorer, function() end, #score_names)
  se.store(put, score_names, "noise", ns)
  results.attrs.scores = table.concat(score_names, ",")
  results.attrs.scores_in_skip = score_skip
end

if not args.no_adv_noise then
  local p, l = over_noise("adv. noise", args.adv_n and math.min(args.adv_n, noise_labels:size(1)), function(z)
    return probs_of(pgd(z, {steps = args.adv_steps, step = args.adv_step, objective = "max_conf"}))
  end, function(z) pgd_draws(z, {objective = "max_conf"}) end)
  store("noise_adv", p, l)
  if args.worst_n > 0 then
    local attacks = {}
    for steps, size in args.worst_attacks:gmatch("(%d+):([%d.eE+-]+)") do
      attacks[#attacks + 1] = {steps = math.tointeger(tonumber(steps)), step = tonumber(size)}
    end
    if #attacks == 0 then fail("--worst_attacks: expected steps:size,..., got " .. args.worst_attacks) end
    local wp, wl = over_noise("adv. noise (worst)", math.min(args.worst_n, noise_labels:size(1)), function(z)
      local best, best_conf
      for _, a in ipairs(attacks) do
        local probs = probs_of(pgd(z, {steps = a.steps, step = a.step, objective = "max_conf"})):clone()
        local conf = probs:max(2)
        if not best then
          best, best_conf = probs, conf
        else
          -- per point, keep the more confident result
          local better = conf:gt(best_conf):unsqueeze(2)
          best = best * (1 - better) + probs * better
          best_conf = best_conf:maximum(conf)
        end
      end
      return best
    end, function(z) for _ = 1, #attacks do pgd_draws(z, {objective = "max_conf"}) end end)
    store("noise_adv_worst", wp, wl)
  end
end

if args.attack or #args.certify > 0 then
  local n, here = require("umbra.worst_eval").run(model, noise_batches, {
    n = math.min(args.worst_n > 0 and args.worst_n or noise_labels:size(1), noise_labels:size(1)),
    attack = args.attack, certify = args.certify, eps = args.eps, seed = args.seed,
    conf_in = clean_probs:max(2), progress = progress, classes = K,
  }, function(group, field, t) results.tensors[group .. "/" .. field] = t end, results.attrs)
  print(string.format("worst case: %s on %d noise points, bounds at eps %s%s", args.attack or "no attack", n,
                      #args.certify > 0 and table.concat(args.certify, ", ") or "none",
                      nranks > 1 and string.format(" (%d of them on rank 0)", here) or ""))
end

-- each score under the --attack ensemble on the score itself: scores/<score>/noise_attacked
if score_names and args.attack then
  local se = require "umbra.scores_eval"
  local n = math.min(args.worst_n > 0 and args.worst_n or noise_labels:size(1), noise_labels:size(1))
  local o = {ensemble = args.attack, eps = args.eps, seed = args.seed}
  for k, v in pairs(score_opts) do o[k] = v end
  local am = over_noise("scores attacked", n, se.attacked(model, score_names, o), function() end, #score_names)
  se.store(put, score_names, "noise_attacked", am)
  results.attrs.scores_attack, results.attrs.scores_attack_n = args.attack, n
  print(string.format("scores under attack: %s on each score, %d noise points", args.attack, n))
end

if not args.no_adv_samples then
  local p, l = over_batches("adv. samples", test, function(x, y)
    return probs_of(pgd(x, {steps = args.adv_steps, step = args.adv_step, objective = "ce", labels = y}))
  end, args.adv_n, function(x, y) pgd_draws(x, {objective = "ce", labels = y}) end)
  store("adv", p, l)
end

-- the most confident images of a set, for the picture grid
local function top_images(ds, probs, k)
  local conf = probs:max(2):to_table()
  local idx = {}
  for i = 1, #conf do idx[i] = i end
  -- most confident first, earlier rows first on ties (a stable order)
  table.sort(idx, function(a, b) if conf[a] ~= conf[b] then return conf[a] > conf[b] end return a < b end)
  local imgs, rows = {}, {}
  for i = 1, math.min(k, #idx) do imgs[i] = ds:get(idx[i]):unsqueeze(1); rows[i] = idx[i] end
  return umbra.cat(imgs, 1), umbra.tensor(rows, "int64")
end

local absent = {}
for _, name in ipairs(ood_names) do
  local opts = {split = "test", dir = args.data_dir, limit = args.n_test, size = {H, W}}
  if name == "lsun_classroom" or name == "imagenet_minus" then
    opts.split = "train"; opts.limit = args.n_test or 10000
  end
  local ok, ds, derr = pcall(data.load, name, opts)
  if ok and ds then
    local c2, h2, w2 = ds:shape()
    if c2 ~= C or h2 ~= H or w2 ~= W then
      absent[#absent + 1] = string.format("%s (images are %dx%dx%d, the model takes %dx%dx%d)",
                                          name, c2, h2, w2, C, H, W)
    else
      local p, l = over_batches("ood " .. name, ds, function(x) return probs_of(x) end)
      store("ood/" .. name, p, zeros_like_labels(l), top_images(ds, p, args.top))
      if scorer then
        local sm = over_batches("scores " .. name, ds, scorer, nil, nil, #score_names)
        require("umbra.scores_eval").store(put, score_names, "ood_" .. name, sm)
      end
      print(string.format("%s: mean max confidence %.4f on %d images", name, p:max(2):mean(), p:size(1)))
    end
  else
    absent[#absent + 1] = name .. " (" .. tostring(ok and derr or ds):gsub("\n.*", "") .. ")"
  end
end
if #absent > 0 then print("out-of-distribution sets absent: " .. table.concat(absent, "; ")) end

results.attrs.model_name = config.exp_name or info.architecture or "model"
results.attrs.dataset = dataset
results.attrs.num_classes = K
results.attrs.test_error = test_error
results.attrs.checkpoint = args.checkpoint
results.attrs.eps = args.eps
results.attrs.adv_steps = args.adv_steps
results.attrs.adv_step = args.adv_step
if args.adv_n then results.attrs.adv_n = math.min(args.adv_n, clean_labels:size(1)) end
results.attrs.seed = args.seed
results.attrs.label_base = 1   -- labels and image_index count from 1 (evalfile.lua)
local path = out_dir .. "/eval.h5"
if not dist.is_main() then return end
local ok, serr = core.h5_save(path, results.tensors, results.attrs)
if not ok then fail(serr) end
print(string.format("wrote %s (%.0f s)", path, umbra.core.clock() - t_start))
