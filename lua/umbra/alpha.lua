-- umbra.alpha: the alpha-scaling experiment (Table 2, docs/method.md §6.4 and §11.6). For
-- uniform points x, the smallest alpha >= 1 with max softmax(f(alpha x)) >= 0.999, found by
-- doubling (up to alpha_max, beyond which alpha = inf) and bisection to a relative precision;
-- then whether clip(alpha x, 0, 1) is still >= 95 % confident. Every round evaluates all the
-- points still searching in one batch (cut into slices of batch_size for memory), so the
-- number of forward passes is the number of rounds, not of points.
local umbra = require "umbra"
local eval = require "umbra.eval"

local alpha = {}

-- Max confidence of the model at clip?(a_j x_{idx_j}) for every j, as a Lua array. idx is
-- ascending; the rows are gathered once, then scaled and evaluated slice by slice.
local function confidences(model, x, idx, a, opts, clip)
  local n, m = x:size(1), #idx
  local mask = {}
  for i = 1, n do mask[i] = 0 end
  for _, i in ipairs(idx) do mask[i] = 1 end
  local rows = (m == n) and x or eval.select_rows(x, umbra.tensor(mask))
  local out, shape = {}, {0}
  for d = 2, x:dim() do shape[d] = 1 end
  for s = 1, m, opts.batch_size do
    local len = math.min(opts.batch_size, m - s + 1)
    local scale = {}
    for j = 1, len do scale[j] = a[s + j - 1] end
    shape[1] = len
    local xs = rows:narrow(1, s, len) * umbra.tensor(scale):view(shape)
    if clip then xs:clamp_(0, 1) end
    if opts.device ~= "cpu" then xs = xs:to(opts.device) end
    local logits = model:forward(xs)
    local conf = eval.max_conf(logits:softmax(2)):to_table()
    for j = 1, len do out[s + j - 1] = conf[j] end
    xs:free()
    logits:free()
  end
  if rows ~= x then rows:free() end
  return out
end

--- alpha.search(model, opts) -> result. The model is in evaluation mode and maps (n, shape...)
--- to logits (n, K). opts: shape (the input shape without the batch, required), n (10000),
--- generator or seed (1), target (0.999), alpha_max (1e20), precision (1e-3, relative),
--- overconfident (0.95), batch_size (500), device ("cpu"), x (the points, instead of drawing
--- U[0,1]). result: alphas (per point; math.huge = never), median, overconfident (percent),
--- never (count of inf), n, rounds. opts.on_round(round, settled, n), when given, is called
--- before each round with the number of points whose alpha is already known.
function alpha.search(model, opts)
  assert(type(opts) == "table" and type(opts.shape) == "table", "alpha.search: opts.shape (input shape) is required")
  local target, amax = opts.target or 0.999, opts.alpha_max or 1e20
  local rel = opts.precision or 1e-3
  local cfg = {batch_size = opts.batch_size or 500, device = opts.device or "cpu"}
  local x = opts.x
  if not x then
    local g = opts.generator or umbra.Generator(opts.seed or 1)
    local size = {opts.n or 10000}
    for _, s in ipairs(opts.shape) do size[#size + 1] = s end
    x = umbra.rand(size, g)
  end
  local n = x:size(1)
  -- per point: cur (doubling) or lo/hi (bisection); alphas[i] once known
  local cur, lo, hi, alphas = {}, {}, {}, {}
  for i = 1, n do cur[i] = 1.0 end  -- a float: doubling an integer would wrap at 2^63
  local rounds = 0
  while true do
    local idx, a = {}, {}
    for i = 1, n do
      if alphas[i] == nil then
        idx[#idx + 1] = i
        a[#a + 1] = cur[i] or (lo[i] + hi[i]) / 2
      end
    end
    if #idx == 0 then break end
    rounds = rounds + 1
    if opts.on_round then opts.on_round(rounds, n - #idx, n) end
    local conf = confidences(model, x, idx, a, cfg, false)
    for j, i in ipairs(idx) do
      local reached = conf[j] >= target
      if cur[i] then                       -- doubling
        if reached and cur[i] == 1 then alphas[i] = 1
        elseif reached then lo[i], hi[i], cur[i] = lo[i] or 1, cur[i], nil
        elseif cur[i] >= amax then alphas[i] = math.huge
        else lo[i], cur[i] = cur[i], math.min(2 * cur[i], amax) end
      elseif reached then hi[i] = a[j]      -- bisection
      else lo[i] = a[j] end
      if not alphas[i] and not cur[i] and hi[i] - lo[i] <= rel * lo[i] then alphas[i] = hi[i] end
    end
  end
  -- clip(alpha x, 0, 1) with each point's own alpha; alpha = inf is never overconfident
  local idx, a = {}, {}
  for i = 1, n do
    if alphas[i] < math.huge then idx[#idx + 1] = i; a[#a + 1] = alphas[i] end
  end
  local over = 0
  if #idx > 0 then
    for _, c in ipairs(confidences(model, x, idx, a, cfg, true)) do
      if c >= (opts.overconfident or 0.95) then over = over + 1 end
    end
  end
  if not opts.x then x:free() end
  return alpha.summarize(alphas, over, rounds)
end

--- alpha.summarize(alphas, over, rounds) -> result: the median and counts of search's
--- result from the per-point alphas and the number of overconfident points (for results
--- gathered from several processes).
function alpha.summarize(alphas, over, rounds)
  local n = #alphas
  local sorted, never = {}, 0
  for i = 1, n do
    sorted[i] = alphas[i]
    if alphas[i] == math.huge then never = never + 1 end
  end
  table.sort(sorted)
  local median = n % 2 == 1 and sorted[(n + 1) // 2] or (sorted[n // 2] + sorted[n // 2 + 1]) / 2
  return {alphas = alphas, median = median, overconfident = 100 * over / n, over_count = over, never = never, n = n,
          rounds = rounds}
end

return alpha
