-- Outlier Exposure: noise.schedule.outliers draws its images from a data set (each one an
-- image of the set), keeps the mixed-in noise first, refuses a set of another shape; and
-- recipes/train.lua --outliers trains with it (uniform-confidence loss) or names a bad set.
local umbra = require "umbra"
local noise, data = umbra.noise, umbra.data
local h = dofile("tests/lua/helpers.lua")
local build = os.getenv("UMBRA_BUILD") or "build"

describe("Outlier Exposure", function()
  local dir = h.tmpdir("outliers_spec")
  os.execute("mkdir -p " .. dir .. "/mnist")
  local g = umbra.Generator(9)
  h.write_idx(dir .. "/mnist", "train", 64, g)
  h.write_idx(dir .. "/mnist", "t10k", 32, g)
  local ds = assert(data.load("mnist", {split = "test", dir = dir}))
  local clean = umbra.rand({5, 1, 28, 28}, g)

  local function is_image_of_set(x)
    for i = 1, ds:size() do
      if (ds:get(i) - x):abs():max() == 0 then return true end
    end
    return false
  end

  it("draws images of the outlier set, the mixed-in noise first", function()
    local z = noise.schedule.outliers(ds){clean = clean, n = 7, generator = g, step = 0, epoch = 1}
    assert.are.same({7, 1, 28, 28}, z:size())
    for i = 1, 7 do assert.is_true(is_image_of_set(z[i])) end
    local mixed = noise.schedule.outliers(ds, {mix = 0.5, noise = noise.schedule.uniform()})
    z = mixed{clean = clean, n = 4, generator = g, step = 0, epoch = 1}
    for i = 1, 2 do assert.is_false(is_image_of_set(z[i])) end
    for i = 3, 4 do assert.is_true(is_image_of_set(z[i])) end
  end)

  it("refuses bad settings and images of another shape", function()
    assert.has_error(function() noise.schedule.outliers(ds, {mix = 2}) end,
      "noise.schedule.outliers: mix must be a number in [0, 1], got 2")
    assert.has_error(function()
      noise.schedule.outliers(ds){clean = umbra.rand({2, 3, 28, 28}, g), n = 2, generator = g}
    end, "noise.schedule.outliers: outlier images are 1x28x28, the clean ones 3x28x28")
  end)

  it("recipes/train.lua --outliers trains with a data set as the out-distribution", function()
    local cmd = "%s/umbra recipes/train.lua --dataset mnist --data_dir %s --n_train 64 --n_test 32 --batch_size 32 "
      .. "--threads 1 --runs_dir %s/runs --at_frac 1 --loss uniform_conf --max_steps 2 %s"
    local out, rc = h.run(string.format(cmd, build, h.quote(dir), h.quote(dir), "--outliers mnist --outlier_mix 0.5"))
    assert.are.equal(0, rc, out)
    out, rc = h.run(string.format(cmd, build, h.quote(dir), h.quote(dir), "--outliers nope"))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("--outliers: ", 1, true) and out:find("nope", 1, true), out)
  end)

  teardown(function() os.execute("rm -rf " .. h.quote(dir)) end)
end)
