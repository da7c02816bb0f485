-- Outlier Exposure: noise.schedule.outliers draws its images from a data set (each one an
-- image of the set), keeps the mixed-in noise first, refuses a set of another shape; and
-- recipes/train.lua --outliers trains with it (uniform-confidence loss) or names a bad set; the
-- same from a tiny PNG folder made in the test (data.load_folder: gray and resized).
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

  -- a tiny PNG folder of colour images of another size, made here
  local pngs = dir .. "/pngs"
  os.execute("mkdir -p " .. h.quote(pngs))
  for i = 1, 3 do
    assert(data.write_png(string.format("%s/img%d.png", pngs, i), umbra.full({3, 10, 12}, i / 4)))
  end

  it("draws from a PNG folder, made gray and resized for an MNIST-like model", function()
    local folder = assert(data.load_folder(pngs, {size = {28, 28}, channels = 1}))
    assert.are.equal(3, folder:size())
    assert.are.same({1, 28, 28}, {folder:shape()})
    for i = 1, 3 do   -- flat images stay flat: the 8-bit value of i / 4
      local im = folder:get(i)
      assert.is_true(math.abs(im:mean() - math.floor(i / 4 * 255 + 0.5) / 255) < 1e-6, "image " .. i)
    end
    local z = noise.schedule.outliers(folder, {mix = 0.5, noise = noise.schedule.uniform()}){
      clean = clean, n = 6, generator = g, step = 0, epoch = 1}
    for i = 1, 6 do   -- the noise first, then flat folder images
      assert.are.equal(i > 3, z[i]:max() - z[i]:min() < 1e-6, "row " .. i)
    end
    assert.are.equal(3, select(1, data.load_folder(pngs, {size = {8, 8}}):shape()))
    local none, err = data.load_folder(dir .. "/nothing_here")
    assert.is_nil(none)
    assert.truthy(err:find("expected a folder of PNG files", 1, true), err)
  end)

  it("recipes/train.lua --outliers takes a PNG folder", function()
    local out, rc = h.run(string.format("%s/umbra recipes/train.lua --dataset mnist --data_dir %s --n_train 64 "
      .. "--n_test 32 --batch_size 32 --threads 1 --runs_dir %s/runs --at_frac 1 --loss uniform_conf --max_steps 2 "
      .. "--outliers %s --outlier_mix 0.25", build, h.quote(dir), h.quote(dir), h.quote(pngs)))
    assert.are.equal(0, rc, out)
    out, rc = h.run(string.format("%s/umbra recipes/train.lua --dataset mnist --data_dir %s --n_train 64 --n_test 32 "
      .. "--runs_dir %s/runs --max_steps 1 --outliers %s/missing/", build, h.quote(dir), h.quote(dir), h.quote(dir)))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("--outliers: umbra.data.load_folder: expected a folder of PNG files", 1, true), out)
  end)

  teardown(function() os.execute("rm -rf " .. h.quote(dir)) end)
end)
