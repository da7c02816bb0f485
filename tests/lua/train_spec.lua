-- recipes/train.lua end to end: smoke runs of Plain, CEDA and ACET write every file of a
-- run folder (config, metrics.csv, log, TensorBoard events, checkpoint); an interrupted
-- run resumed from its checkpoint gives the numbers of an uninterrupted one; a diverging
-- loss stops the run without writing a checkpoint. Uses the real MNIST when UMBRA_DATA
-- has it, else small IDX fixtures written here.
local build = os.getenv("UMBRA_BUILD") or "build"
local tbreader = dofile("tests/lua/tbreader.lua")
local read_events, fields = tbreader.read_events, tbreader.fields

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local h = dofile("tests/lua/helpers.lua")
local write_idx = h.write_idx

local data_dir
local real = os.getenv("UMBRA_DATA")
if real and io.open(real .. "/mnist/train-labels-idx1-ubyte.gz") then
  data_dir = real
else
  local umbra = require "umbra"
  data_dir = h.tmpdir("train_data")   -- removed by the helpers at the end of the run
  os.execute("mkdir -p " .. data_dir .. "/mnist")
  local g = umbra.Generator(3)
  write_idx(data_dir .. "/mnist", "train", 256, g)
  write_idx(data_dir .. "/mnist", "t10k", 128, g)
end

local function train(runs, extra)
  return sh(string.format("%s/umbra recipes/train.lua --dataset mnist --data_dir %s --n_train 256 --n_test 128 " ..
                          "--batch_size 64 --threads 1 --runs_dir %s %s", build, data_dir, runs, extra))
end

local function run_dir(runs, exp)
  local p = io.popen("ls -d " .. runs .. "/" .. exp .. "/*/")
  local d = p:read("l")
  p:close()
  return d and d:gsub("/$", "")
end

-- tag -> the steps at which it was written, over every summary in the events
local function tags_of(events)
  local out = {}
  for _, ev in ipairs(events) do
    for _, summary in ipairs(ev[5] or {}) do
      for _, value in ipairs(fields(summary)[1] or {}) do
        local tag = fields(value)[1][1]
        out[tag] = out[tag] or {}
        table.insert(out[tag], ev[2] and ev[2][1] or 0)
      end
    end
  end
  return out
end

local function metrics(dir)
  local rows = {}
  for line in io.lines(dir .. "/metrics.csv") do rows[#rows + 1] = line end
  return rows
end

describe("recipes/train.lua", function()
  local runs = h.tmpdir("train_runs")
  teardown(function() os.execute("rm -rf " .. runs) end)

  for _, case in ipairs{{"plain", "--at_frac 0"}, {"ceda", "--at_frac 1"}, {"acet", "--at_frac 1 --pgd_niter 2"}} do
    it("writes a complete run folder (" .. case[1] .. ")", function()
      local ok, out = train(runs, "--n_epochs 2 --exp_name " .. case[1] .. " " .. case[2])
      assert.is_true(ok, out)
      local dir = assert(run_dir(runs, case[1]), out)
      assert.matches("/%d%d%d%d%-%d%d%-%d%d_%d%d%-%d%d%-%d%d_mnist_lenet$", dir)   -- short; options in config.lua
      local cfg = dofile(dir .. "/config.lua")
      assert.are.equal("lenet", cfg.architecture)
      assert.are.equal(0.0005, cfg.lmbd)
      -- piped: whole lines with the time left to the end of the run, no carriage returns
      assert.is_nil(out:find("\r", 1, true))
      assert.matches("\n1/8 %(12%%%) %S+ elapsed, %S+ left  epoch 1 step 1/4 loss", out)
      assert.matches("\n8/8 %(100%%%) %S+ elapsed, 0s left  epoch 2 step 4/4", out)
      local rows = metrics(dir)
      assert.are.equal(3, #rows)
      assert.matches("^epoch,train_err,train_loss_clean,train_loss_noise", rows[1])
      assert.matches("^2,", rows[3])
      local log = io.open(dir .. "/log"):read("a")
      assert.matches("Epoch 2 training is done", log, 1, true)
      local tags = {}
      for _, side in ipairs{"train", "test"} do
        local p = io.popen("ls " .. dir .. "/tb/" .. side .. "/events.out.tfevents.*")
        local file = p:read("l"); p:close()
        local ev = read_events(file)
        assert.is_true(#ev >= 3, side .. " events")
        assert.are.equal("brain.Event:2", ev[1][3][1])
        tags[side] = tags_of(ev)
      end
      -- per step (8 steps) and per epoch; confidence histograms of clean and noise test
      -- points per epoch; the options as text
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8}, tags.train["step/loss"])
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8}, tags.train["step/lr"])
      assert.are.same({1, 2}, tags.train["main/err"])
      assert.are.same({0}, tags.train["config"])
      assert.are.same({1, 2}, tags.test["confidence/clean"])
      assert.are.same({1, 2}, tags.test["confidence/noise"])
      local info = assert(require("umbra.checkpoint").read(dir .. "/checkpoint.h5"))
      assert.are.equal(2, info.attributes.epoch)
    end)
  end

  it("resumes an interrupted run with the numbers of an uninterrupted one", function()
    local ok, out = train(runs, "--n_epochs 3 --at_frac 1 --save_every 1 --exp_name straight")
    assert.is_true(ok, out)
    ok, out = train(runs, "--n_epochs 3 --at_frac 1 --save_every 1 --stop_epoch 1 --exp_name cut")
    assert.is_true(ok, out)
    local cut = run_dir(runs, "cut")
    assert.are.equal(2, #metrics(cut))
    ok, out = sh(string.format("%s/umbra recipes/train.lua --resume '%s' --data_dir %s --threads 1", build, cut,
                               data_dir))
    assert.is_true(ok, out)
    local a, b = metrics(run_dir(runs, "straight")), metrics(cut)
    assert.are.equal(#a, #b)
    for i = 2, #a do
      -- every column but the last (seconds) must agree exactly
      assert.are.equal(a[i]:gsub(",[^,]*$", ""), b[i]:gsub(",[^,]*$", ""))
    end
  end)

  it("stops on a non-finite loss, naming the step, and saves nothing", function()
    local ok, out, code = train(runs, "--n_epochs 2 --lr 1e30 --opt momentum --exp_name nan")
    assert.is_falsy(ok)
    assert.are.equal(2, code)
    assert.matches("stopping: the loss is %-?[%a]+ at step %d+", out)
    assert.is_nil(io.open(run_dir(runs, "nan") .. "/checkpoint.h5"))
  end)

  it("refuses bad flags with a clear message", function()
    local ok, out = train(runs, "--dataset imagenet")
    assert.is_falsy(ok)
    assert.matches("--dataset must be", out, 1, true)
    ok, out = sh(build .. "/umbra recipes/train.lua --help")
    assert.is_true(ok)
    for _, flag in ipairs{"--dataset", "--model", "--loss", "--opt", "--lr", "--lmbd", "--n_epochs", "--batch_size",
                          "--at_frac", "--pgd_niter", "--pgd_eps", "--frac_perm", "--exp_name", "--seed", "--device",
                          "--resume", "--data_dir", "--threads", "--max_steps"} do
      assert.matches(flag, out, 1, true)
    end
  end)
end)
