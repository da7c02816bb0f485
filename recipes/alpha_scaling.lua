-- recipes/alpha_scaling.lua: Table 2 of the paper (docs/method.md §6.4, §11.6). For 10,000
-- uniform points x of the model's input shape, the median of the smallest alpha >= 1 with
-- 99.9 % confidence at alpha x, and the percentage of points whose clip(alpha x, 0, 1) is
-- still 95 % confident. Usage:
--   umbra recipes/alpha_scaling.lua CHECKPOINT [CHECKPOINT...] [--names Plain,ACET] [--n 10000]
--   umbra recipes/alpha_scaling.lua --model lenet [--num_classes 10]   (an untrained model)
-- Under `mpirun -np N` each rank searches a block of the points (the same points as one
-- process) and the alphas are gathered exactly.
local umbra = require "umbra"
local argparse = require "argparse"
local runs = require "umbra.runs"
local alpha = require "umbra.alpha"
local log = require "umbra.log"
local dist = require "umbra.dist"

local parser = argparse("alpha_scaling", "Median alpha to 99.9 % confidence on alpha-scaled uniform noise (Table 2)")
parser:argument("checkpoints", "checkpoints (.h5) or run folders"):args("*")
parser:option("--model", "also evaluate an untrained model of this architecture (models/<name>.lua)")
parser:option("--num_classes", "classes of the untrained --model", "10"):convert(math.tointeger)
parser:option("--input_shape", "input shape without the batch, e.g. 1,28,28 (default: from the checkpoint)")
parser:option("--names", "comma-separated column names (default: the runs' names)")
parser:option("--n", "uniform points", "10000"):convert(math.tointeger)
parser:option("--seed", "seed of the points (the same points for every model)", "1"):convert(math.tointeger)
parser:option("--target", "confidence alpha must reach", "0.999"):convert(tonumber)
parser:option("--overconfident", "confidence counted as overconfident after clipping", "0.95"):convert(tonumber)
parser:option("--alpha_max", "largest alpha tried; beyond it alpha = inf", "1e20"):convert(tonumber)
parser:option("--precision", "relative precision of the bisection", "1e-3"):convert(tonumber)
parser:option("--batch_size", "points per forward pass", "500"):convert(math.tointeger)
parser:option("--device", "cpu | cuda", "cpu")
parser:option("--model_file", "a file returning the model's builder, for architectures not in models/")
parser:option("--threads", "CPU threads", "2"):convert(math.tointeger)
local args = parser:parse(arg)
local _, nranks = dist.init()
umbra.set_num_threads(args.threads)
local print = dist.is_main() and print or function() end   -- rank 0 speaks for all
if nranks > 1 then print(string.format("%d ranks x %d threads per rank", nranks, umbra.get_num_threads())) end

local function fail(msg) io.stderr:write("alpha_scaling: ", msg, "\n"); os.exit(1) end
if args.n < nranks then fail(string.format("--n %d: fewer points than the %d ranks", args.n, nranks)) end

-- alpha.search on this rank's block of the points one process would draw, gathered
local function search(model, opts)
  if nranks == 1 then return alpha.search(model, opts) end
  local size = {opts.n}
  for _, s in ipairs(opts.shape) do size[#size + 1] = s end
  local x = umbra.rand(size, umbra.Generator(opts.seed))
  local first, count = dist.split(opts.n)
  opts.x = x:narrow(1, first, count):contiguous()
  local r = alpha.search(model, opts)
  local rounds = dist.allgather_numbers{r.rounds}
  return alpha.summarize(dist.allgather_numbers(r.alphas), dist.sum_numbers{r.over_count}[1],
                         math.max(table.unpack(rounds)))
end

local function shape_option()
  if not args.input_shape then return nil end
  local s = {}
  for v in args.input_shape:gmatch("[^,x]+") do s[#s + 1] = math.tointeger(tonumber(v)) end
  if #s == 0 then fail("--input_shape: expected sizes like 1,28,28, got " .. args.input_shape) end
  return s
end

if args.device == "cuda" and nranks > 1 then dist.pick_local_gpu() end   -- before CUDA loads
-- the models: {name, model, shape, dataset}
local entries = {}
local function load_entry(path)
  local model, info = runs.load_model(path, {device = args.device, model_file = args.model_file})
  if not model then return nil, info end
  local cfg = info.config or {}
  local name = cfg.exp_name or path:gsub("/checkpoint[^/]*%.h5$", ""):match("([^/]+)/?$") or path
  return {name = name, model = model, shape = shape_option() or info.input_shape, dataset = info.dataset or "?"}
end
for _, path in ipairs(args.checkpoints) do
  local e, err = load_entry(path)
  if e then entries[#entries + 1] = e
  elseif #args.checkpoints > 1 then
    -- one checkpoint that cannot be loaded does not cost the others' results
    io.stderr:write("alpha_scaling: warning: skipping ", err, "\n")
  else
    fail(err)
  end
end
if args.model then
  local ok, builder = pcall(require, "models." .. args.model)
  if not ok then fail("--model " .. args.model .. ": " .. tostring(builder):gsub("\n.*", "")) end
  local model = builder{num_classes = args.num_classes, seed = args.seed}
  model:evaluate()
  if args.device ~= "cpu" then model:to(args.device) end
  local shape = shape_option() or runs.input_shape{architecture = args.model}
  entries[#entries + 1] = {name = args.model .. " (untrained)", model = model, shape = shape, dataset = "-"}
end
if #entries == 0 then parser:error("give at least one checkpoint or --model") end
if args.names then
  local i = 0
  for name in args.names:gmatch("[^,]+") do
    i = i + 1
    if entries[i] then entries[i].name = name end
  end
end

local t0 = umbra.core.clock()
for _, e in ipairs(entries) do
  if not e.shape then fail(e.name .. ": unknown input shape; pass --input_shape") end
  -- progress on stderr (points whose alpha is known; rank 0's share on several ranks), the
  -- table alone on stdout
  local share = select(2, dist.split(args.n))
  local bar = dist.main_only(function()
    return log.progress(share, {label = e.name .. ": points settled", stream = io.stderr, every = 5})
  end)
  e.result = search(e.model, {shape = e.shape, n = args.n, seed = args.seed, target = args.target,
                              alpha_max = args.alpha_max, precision = args.precision,
                              overconfident = args.overconfident, batch_size = args.batch_size,
                              device = args.device,
                              on_round = function(round, settled) bar:update(settled, "round " .. round) end})
  bar:update(share)
  bar:finish()
  if dist.is_main() then
    io.stderr:write(string.format("%s: %d rounds, %d of %d points never reach %g (%.0f s)\n", e.name, e.result.rounds,
                                  e.result.never, e.result.n, args.target, umbra.core.clock() - t0))
  end
end

local function cells(f)
  local out = {}
  for i, e in ipairs(entries) do out[i] = f(e) end
  return " | " .. table.concat(out, " | ") .. " |"
end
print("| " .. cells(function(e) return e.name end))
print("|" .. string.rep("---|", #entries + 1))
print("| Trained on" .. cells(function(e) return e.dataset end))
print("| Median α" .. cells(function(e)
  return e.result.median == math.huge and "∞" or string.format("%.3g", e.result.median)
end))
print("| % overconfident" .. cells(function(e) return string.format("%.1f", e.result.overconfident) end))
print(string.format("\n%d points x ~ U[0,1]^d (seed %d); α: smallest ≥ 1 with confidence ≥ %g (doubling to %g, "
                    .. "bisection to %g); overconfident: clip(αx, 0, 1) ≥ %g", args.n, args.seed, args.target,
                    args.alpha_max, args.precision, args.overconfident))
