-- umbra.alpha on a hand-made linear 2-class model, where the answer is analytic: logits
-- (w.x, 0) give confidence sigmoid(alpha |w.x|), which reaches 0.999 at alpha = log(999)/|w.x|
-- (or 1 when already there); clip(alpha x, 0, 1) is overconfident iff |w.clip| >= log(19).
local umbra = require "umbra"
local nn = require "umbra.nn"
local alpha = require "umbra.alpha"
local h = dofile("tests/lua/helpers.lua")

local w = {8, -3, 6, 1, -2}

local function linear_model(weights)
  local m = nn.Sequential{{"fc", nn.Linear(#weights, 2, {seed = 1})}}
  local p = m:named_parameters()
  local zeros = {}
  for i = 1, #weights do zeros[i] = 0 end
  p["fc.weight"]:copy_(umbra.tensor{weights, zeros})
  p["fc.bias"]:zero_()
  m:evaluate()
  return m
end

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

describe("alpha.search", function()
  local model = linear_model(w)
  local x = umbra.rand({300, 5}, umbra.Generator(7))
  local rows = x:to_table()
  local r = alpha.search(model, {shape = {5}, x = x, batch_size = 64})

  it("finds each point's smallest alpha to relative precision 1e-3", function()
    local ones = 0
    for i, xi in ipairs(rows) do
      local exact = math.max(1, math.log(999) / math.abs(dot(w, xi)))
      if exact == 1 then ones = ones + 1 end
      assert(math.abs(r.alphas[i] - exact) <= 2e-3 * exact,
             string.format("point %d: alpha %.6g, analytic %.6g", i, r.alphas[i], exact))
      assert(r.alphas[i] >= exact * (1 - 1e-4), "the answer must not undercut the analytic alpha")
    end
    assert(ones > 10 and ones < 290, "the fixture should mix alpha = 1 and alpha > 1 (" .. ones .. ")")
    assert.are.equal(0, r.never)
  end)

  it("runs all points together: the rounds do not grow with the number of points", function()
    assert(r.rounds <= 70 + 12, "rounds " .. r.rounds)
  end)

  it("reports the median alpha and the share of overconfident clipped points", function()
    local sorted, over = {}, 0
    for i, xi in ipairs(rows) do
      sorted[i] = r.alphas[i]
      local clipped = {}
      for k = 1, #xi do clipped[k] = math.min(1, math.max(0, r.alphas[i] * xi[k])) end
      if math.abs(dot(w, clipped)) >= math.log(19) then over = over + 1 end
    end
    table.sort(sorted)
    assert.are.equal((sorted[150] + sorted[151]) / 2, r.median)
    assert.are.equal(100 * over / 300, r.overconfident)
    assert.are.equal(300, r.n)
  end)

  it("draws its own seeded points from the input shape", function()
    local a = alpha.search(model, {shape = {5}, n = 40, seed = 3})
    local b = alpha.search(model, {shape = {5}, n = 40, seed = 3})
    assert.are.same(a.alphas, b.alphas)
    assert.are.equal(40, #a.alphas)
  end)

  it("gives alpha = inf to points that never get confident", function()
    local flat = linear_model{0, 0, 0, 0, 0}
    local z = alpha.search(flat, {shape = {5}, n = 9, seed = 1})
    assert.are.equal(9, z.never)
    assert.are.equal(math.huge, z.median)
    assert.are.equal(0, z.overconfident)
    for i = 1, 9 do assert.are.equal(math.huge, z.alphas[i]) end
  end)
end)

-- runs.load_model and the recipe on a tiny checkpoint of models/mlp.lua
describe("runs.load_model and recipes/alpha_scaling.lua", function()
  local checkpoint = require "umbra.checkpoint"
  local runs = require "umbra.runs"
  local function capture(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"<rc=$?>\"")
    local out = p:read("a")
    p:close()
    local body, rc = out:match("^(.*)<rc=(%d+)>\n$")
    return body, tonumber(rc)
  end
  local root = capture("pwd"):gsub("\n$", "")
  local build = os.getenv("UMBRA_BUILD") or "build"
  local exe = build:sub(1, 1) == "/" and build .. "/umbra" or root .. "/" .. build .. "/umbra"
  local dir = h.tmpdir("alpha_spec")
  local original = require("models.mlp"){sizes = {4, 8, 3}, seed = 5}
  assert(checkpoint.save(dir .. "/checkpoint.h5", {model = original, epoch = 1, step = 1,
    config = {architecture = "mlp", num_classes = 3, sizes = {4, 8, 3}, exp_name = "tiny_mlp"}}))

  it("rebuilds the architecture from the configuration and loads its weights", function()
    local model, info = runs.load_model(dir)  -- a run folder finds its checkpoint.h5
    assert.is_truthy(model, info)
    assert.are.equal("mlp", info.architecture)
    assert.are.equal(3, info.num_classes)
    assert.are.same({4}, info.input_shape)
    assert.is_false(model:is_training())
    local x = umbra.rand({5, 4}, umbra.Generator(2))
    assert.are.same(original:forward(x):to_table(), model:forward(x):to_table())
  end)

  it("says why a checkpoint cannot be loaded", function()
    local model, err = runs.load_model(dir .. "/missing.h5")
    assert.is_nil(model)
    assert.truthy(err:find("missing.h5", 1, true), err)
    assert(checkpoint.save(dir .. "/noarch.h5", {model = original, config = {num_classes = 3}}))
    model, err = runs.load_model(dir .. "/noarch.h5")
    assert.is_nil(model)
    assert.truthy(err:find("names no architecture", 1, true), err)
    assert(checkpoint.save(dir .. "/other.h5", {model = original, config = {architecture = "no_such_net"}}))
    model, err = runs.load_model(dir .. "/other.h5")
    assert.is_nil(model)
    assert.truthy(err:find("architecture 'no_such_net' has no builder models/no_such_net.lua", 1, true), err)
  end)

  it("prints Table 2's rows for checkpoints side by side", function()
    local out, rc = capture(string.format("%s %s/recipes/alpha_scaling.lua %s/checkpoint.h5 %s --n 40 --names A,B",
                                          exe, root, dir, dir))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("|  | A | B |", 1, true), out)
    assert.truthy(out:find("| Median α | %d"), out)
    assert.truthy(out:find("| %% overconfident | %d+%.%d | %d+%.%d |"), out)
  end)

  it("takes a user's model with --model_file, and skips (with a warning) one checkpoint among several", function()
    -- a model of the user's own: an MLP under another architecture name
    local f = assert(io.open(dir .. "/my_model.lua", "w"))
    f:write('return function(opts) return require("models.mlp"){sizes = opts.sizes, seed = 1} end\n')
    f:close()
    assert(checkpoint.save(dir .. "/mine.h5", {model = original,
      config = {architecture = "my_mlp", num_classes = 3, sizes = {4, 8, 3}, exp_name = "mine"}}))
    local model, info = runs.load_model(dir .. "/mine.h5", {model_file = dir .. "/my_model.lua"})
    assert.is_truthy(model, info)
    local x = umbra.rand({2, 4}, umbra.Generator(3))
    assert.are.same(original:forward(x):to_table(), model:forward(x):to_table())
    local _, err = runs.load_model(dir .. "/mine.h5")
    assert.truthy(err:find("pass --model_file FILE.lua", 1, true), err)
    local out, rc = capture(string.format("%s %s/recipes/alpha_scaling.lua %s/mine.h5 %s/other.h5 --n 20 "
                                          .. "--input_shape 4 --model_file %s/my_model.lua", exe, root, dir, dir, dir))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("warning: skipping " .. dir .. "/other.h5", 1, true), out)
    assert.truthy(out:find("|  | mine |", 1, true), out)
    out, rc = capture(string.format("%s %s/recipes/alpha_scaling.lua %s/other.h5 --n 20", exe, root, dir))
    assert.are.equal(1, rc, out)   -- alone, it is an error
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)
