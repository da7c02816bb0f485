-- recipes/paper/worst_case.lua and worst_case_table.lua end to end on fixture data: a small
-- MLP checkpoint, the paper's attack with bounds on 6 noise points, what worst of three and the
-- suite add (small APGD / MPGD budgets), merged into one table whose worst of three and suite
-- rows equal attack.worst_case with those presets; a file of another seed is refused.
local umbra = require "umbra"
local checkpoint = require "umbra.checkpoint"
local h = dofile("tests/lua/helpers.lua")
local exe = (os.getenv("UMBRA_BUILD") or "build") .. "/umbra"

describe("the worst-case recipe", function()
  local dir = h.tmpdir("worst_case_recipe")
  local data, g = dir .. "/data", umbra.Generator(4)
  os.execute("mkdir -p " .. data .. "/mnist")
  h.write_idx(data .. "/mnist", "t10k", 24, g)
  -- a model file of the user's (--model_file): cheap enough for the presets' 780 PGD steps
  local model_file = dir .. "/tiny.lua"
  local f = assert(io.open(model_file, "w"))
  f:write([[return function(o)
  local nn = require "umbra.nn"
  return nn.Sequential{nn.Flatten(), nn.Linear(784, 16, {generator = o.generator}), nn.ReLU(),
                       nn.Linear(16, 10, {generator = o.generator})}
end]])
  f:close()
  local ckpt = dir .. "/tiny.h5"
  assert(checkpoint.save(ckpt, {model = dofile(model_file){generator = g},
                                config = {architecture = "tiny", dataset = "mnist", num_classes = 10}}))
  local model = assert(require("umbra.runs").load_model(ckpt, {model_file = model_file}))
  teardown(function() os.execute("rm -rf " .. h.quote(dir)) end)

  local function stage(attack, extra, n)
    local out, rc = h.run(string.format("%s recipes/paper/worst_case.lua %s --out %s/tiny.%s.lua --attack %s --n %d "
      .. "--n_test 24 --batch_size 4 --apgd_steps 6 --apgd_restarts 2 --mpgd_steps 5 --data_dir %s --threads 1 "
      .. "--model_file %s %s", exe, h.quote(ckpt), h.quote(dir), attack, attack, n or 6, h.quote(data),
      h.quote(model_file), extra or ""))
    assert.are.equal(0, rc, out)
    return dofile(string.format("%s/tiny.%s.lua", dir, attack))
  end

  it("merges the stages into worst of three and the suite, as attack.worst_case gives them", function()
    local p = stage("paper")
    local w3 = stage("worst3_extra", "--certify ''")
    local s = stage("suite_extra", "--certify ''")
    assert.are.equal(6, p.n)
    assert.are.same({0.3, 0.01}, p.certify)
    assert.are.equal(24, #p.conf_in)
    assert.are.same({"clean", "pgd 200x0.0375", "pgd 500x0.0006"}, w3.names)
    assert.are.same({"clean", "apgd", "mpgd contrast", "mpgd uniform", "mpgd gaussian"}, s.names)
    -- the whole suite on the same noise, batch by batch, gives the merged values
    local suite, worst3 = {}, {}
    local test = assert(umbra.data.load("mnist", {split = "test", dir = data, limit = 24}))
    local ng, done = umbra.Generator(0), 0
    for x in test:batches{batch_size = 4} do
      local z = umbra.noise.authors(x, ng)
      if done < 6 then
        z = z:narrow(1, 1, math.min(4, 6 - done)):contiguous()
        local cs, _, _, rep = umbra.attack.worst_case(model, z, {eps = 0.3, ensemble = "suite", seed = 0,
                                                                 apgd_steps = 6, apgd_restarts = 2, mpgd_steps = 5})
        local clean = umbra.eval.max_conf(model:forward(z):softmax(2))
        for i = 1, z:size(1) do
          local c3 = clean[i]   -- worst of three: the clean point and the suite's first three members
          for m = 2, 4 do c3 = math.max(c3, rep.conf[rep.names[m]][i]) end
          worst3[#worst3 + 1] = c3; suite[#suite + 1] = cs[i]
        end
        done = done + z:size(1)
      end
    end
    local function near(a, b, what)
      assert(math.abs(a - b) <= 1e-8 * math.max(1, a), what .. ": " .. a .. " vs " .. b)
    end
    for i = 1, 6 do   -- the files keep 9 significant digits
      near(worst3[i], math.max(p.best[i], w3.best[i]), "worst3 point " .. i)
      near(suite[i], math.max(p.best[i], w3.best[i], s.best[i]), "suite point " .. i)
    end
    local out, rc = h.run(string.format("%s recipes/paper/worst_case_table.lua --dir %s tiny", exe, h.quote(dir)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| tiny | paper (80 x 0.02) | 6 |", 1, true), out)
    assert.truthy(out:find("| tiny | worst of three | 6 |", 1, true), out)
    assert.truthy(out:find("| tiny | suite (APGD 6x2, MPGD 5 x 3 starts) | 6 |", 1, true), out)
    assert.truthy(out:find("tiny, first 6 points: the suite is above worst of three on %d+ points"), out)
  end)

  -- the stage file's first clean confidence moved by delta (a smaller batch can round differently)
  local function nudge(delta)
    local path = dir .. "/tiny.worst3_extra.lua"
    local src = assert(io.open(path))
    local text = src:read("a")
    src:close()
    text = text:gsub("\nclean = {([^,]+),", function(v)
      return string.format("\nclean = {%.9g,", tonumber(v) + delta)
    end, 1)
    local dst = assert(io.open(path, "w"))
    dst:write(text)
    dst:close()
  end
  local function table_of(extra)
    return h.run(string.format("%s recipes/paper/worst_case_table.lua --dir %s --no_plots tiny %s", exe, h.quote(dir),
                               extra or ""))
  end

  it("merges a later stage on fewer points over those points, rounding allowed", function()
    stage("worst3_extra", "--certify ''", 4)
    nudge(2e-7)
    local out, rc = table_of()
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| tiny | paper (80 x 0.02) | 6 |", 1, true), out)
    assert.truthy(out:find("| tiny | worst of three | 4 |", 1, true), out)
    assert.truthy(out:find("| tiny | suite (APGD 6x2, MPGD 5 x 3 starts) | 4 |", 1, true), out)
    nudge(1e-3)
    out, rc = table_of()
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("noise point 1 differs (clean confidence", 1, true), out)
  end)

  it("merges stages of different sizes on uniform noise when the test set is absent", function()
    os.remove(dir .. "/tiny.suite_extra.lua")
    stage("paper", "--dataset svhn", 6)   -- no svhn under the fixture data: uniform noise
    stage("worst3_extra", "--dataset svhn --certify ''", 3)
    local out, rc = table_of()
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| tiny | worst of three | 3 |", 1, true), out)
  end)

  it("refuses to merge a stage made from other noise", function()
    stage("paper", "--seed 1")
    local out, rc = h.run(string.format("%s recipes/paper/worst_case_table.lua --dir %s --no_plots tiny", exe,
                                        h.quote(dir)))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("differ in seed (1 vs 0)", 1, true), out)
  end)
end)
