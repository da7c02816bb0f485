-- recipes/evaluate.lua and recipes/alpha_scaling.lua under mpirun: 2 ranks write what one
-- process writes (the batches dealt out, every rank drawing every batch's random numbers).
local h = dofile("tests/lua/helpers.lua")
local core = require "umbra.core"
local build = os.getenv("UMBRA_BUILD") or "build"

describe("evaluation on 2 ranks", function()
  local dir = h.tmpdir("dist_eval")
  os.execute("mkdir -p " .. dir .. "/mnist")
  local g = require("umbra").Generator(5)
  h.write_idx(dir .. "/mnist", "train", 64, g)
  h.write_idx(dir .. "/mnist", "t10k", 40, g)
  teardown(function() os.execute("rm -rf " .. dir) end)

  local ckpt
  setup(function()
    local cmd = "%s/umbra recipes/train.lua --dataset mnist --data_dir %s --batch_size 32 --n_epochs 1 --threads 1 "
                .. "--runs_dir %s/runs --exp_name ev"
    local out, rc = h.run(string.format(cmd, build, dir, dir))
    assert(rc == 0, out)
    local p = io.popen("ls " .. dir .. "/runs/ev/*/checkpoint.h5")
    ckpt = p:read("l")
    p:close()
  end)

  it("evaluate.lua: the same eval.h5 (40 points in batches of 16: 16, 16, 8)", function()
    local flags = string.format(" recipes/evaluate.lua %s --data_dir %s --batch_size 16 --adv_steps 3 --worst_n 24 "
                                .. "--worst_attacks 2:0.1,3:0.05 --threads 1 --out ", ckpt, dir)
    local out, rc = h.run(build .. "/umbra" .. flags .. dir .. "/one")
    assert.are.equal(0, rc, out)
    out, rc = h.run(h.mpirun(2) .. flags .. dir .. "/two")
    assert.are.equal(0, rc, out)
    assert.matches("2 ranks x 1 threads per rank", out, 1, true)
    local a, b = assert(core.h5_read(dir .. "/one/eval.h5")), assert(core.h5_read(dir .. "/two/eval.h5"))
    local n = 0
    for name, t in pairs(a.tensors) do
      local u = assert(b.tensors[name], name .. " missing on 2 ranks")
      assert.are.same(t:size(), u:size())
      assert.is_true((t:float() - u:float()):abs():max() <= 1e-6, name)
      n = n + 1
    end
    assert.is_true(n >= 10)
  end)

  -- the attack ensemble and the certified bounds (lua/umbra/worst_eval.lua) split by batch
  it("evaluate.lua --attack paper --certify: the same eval.h5 (24 points: 16 on rank 0, 8 on rank 1)", function()
    local flags = string.format(" recipes/evaluate.lua %s --data_dir %s --batch_size 16 --no_adv_noise "
                                .. "--no_adv_samples --worst_n 24 --attack paper --certify 0.3 --certify 0.1 "
                                .. "--threads 1 --out ", ckpt, dir)
    local out, rc = h.run(build .. "/umbra" .. flags .. dir .. "/one_worst")
    assert.are.equal(0, rc, out)
    out, rc = h.run(h.mpirun(2) .. flags .. dir .. "/two_worst")
    assert.are.equal(0, rc, out)
    assert.matches("worst case: paper on 24 noise points, bounds at eps 0.3, 0.1 (16 of them on rank 0)", out, 1, true)
    local a, b = assert(core.h5_read(dir .. "/one_worst/eval.h5")), assert(core.h5_read(dir .. "/two_worst/eval.h5"))
    for _, name in ipairs{"noise_worst/probs", "noise_worst/winner", "noise_worst/clean_conf",
                          "noise_bound_1/bound", "noise_bound_2/bound"} do
      local t, u = assert(a.tensors[name], name), assert(b.tensors[name], name .. " missing on 2 ranks")
      assert.are.same({24}, {t:size(1)})
      assert.are.same(t:size(), u:size())
      assert.is_true((t:float() - u:float()):abs():max() <= 1e-6, name)
    end
    for _, k in ipairs{"worst_names", "worst_escapes", "worst_n", "bound_eps_1", "bound_eps_2"} do
      assert.is_not_nil(a.attributes[k], k)
      assert.are.equal(a.attributes[k], b.attributes[k], k)
    end
  end)

  it("alpha_scaling.lua: the same table (101 points: 51 and 50 per rank)", function()
    local flags = string.format(" recipes/alpha_scaling.lua %s --n 101 --batch_size 32 --threads 1", ckpt)
    local one, rc = h.run(build .. "/umbra" .. flags)
    assert.are.equal(0, rc, one)
    local two, rc2 = h.run(h.mpirun(2) .. flags)
    assert.are.equal(0, rc2, two)
    local function table_of(text)   -- the table's lines (the progress on stderr comes in between)
      local rows = {}
      for line in text:gmatch("[^\n]+") do if line:match("^|") then rows[#rows + 1] = line end end
      return table.concat(rows, "\n")
    end
    assert.are.equal(table_of(one), table_of(two))
  end)
end)
