-- recipes/evaluate.lua and recipes/analyze.lua end to end on fixture data: a LeNet trained
-- for one epoch on 256 IDX fixture images is evaluated on 64 fixture test images, with a
-- fixture Fashion-MNIST as the one present out-of-distribution set; eval.h5 holds every
-- set with the expected number of rows (Adv. Noise and Adv. Samples limited by --adv_n,
-- the worst case by --worst_n), the absent sets are named, and analyze prints the Table 1
-- block, appends the CSV row and draws the pictures (when gnuplot is there). Bad
-- arguments are refused with a message naming them.
local umbra = require "umbra"
local evalfile = require "umbra.evalfile"
local h = dofile("tests/lua/helpers.lua")
local build = os.getenv("UMBRA_BUILD") or "build"
local exe = build .. "/umbra"

describe("recipes/evaluate.lua", function()
  local dir = h.tmpdir("evaluate_spec")
  local data = dir .. "/data"
  os.execute("mkdir -p " .. data .. "/mnist " .. data .. "/fashion_mnist")
  local g = umbra.Generator(5)
  h.write_idx(data .. "/mnist", "train", 256, g)
  h.write_idx(data .. "/mnist", "t10k", 64, g)
  h.write_idx(data .. "/fashion_mnist", "t10k", 48, g)
  local run

  it("evaluates a trained checkpoint on every set and analyze reports it", function()
    local out, rc = h.run(string.format("%s recipes/train.lua --dataset mnist --data_dir %s --n_train 256 --n_test 64 "
      .. "--batch_size 64 --n_epochs 1 --threads 1 --at_frac 0 --pgd_niter 0 --exp_name plain --runs_dir %s/runs",
      exe, h.quote(data), h.quote(dir)))
    assert.are.equal(0, rc, out)
    run = h.run("ls -d " .. h.quote(dir) .. "/runs/plain/*/"):gsub("/?\n$", "")

    out, rc = h.run(string.format("%s recipes/evaluate.lua %s/checkpoint.h5 --data_dir %s --n_test 64 --adv_n 40 "
      .. "--adv_steps 3 --worst_n 16 --worst_attacks 2:0.1,3:0.05 --threads 1", exe, h.quote(run), h.quote(data)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("clean: test error", 1, true), out)
    assert.truthy(out:find("emnist_letters", 1, true), out)   -- absent here, and said so

    local ev = assert(evalfile.read(run .. "/eval.h5"))
    local rows = {clean = 64, noise = 64, noise_adv = 40, noise_adv_worst = 16, adv = 40}
    for set, n in pairs(rows) do
      assert.is_truthy(ev.sets[set], set)
      assert.are.equal(n, ev.sets[set].probs:size(1), set)
      assert.are.equal(10, ev.sets[set].probs:size(2), set)
    end
    assert.are.same({"fashion_mnist"}, ev.ood_names)
    assert.are.equal(48, ev.ood.fashion_mnist.probs:size(1))
    assert.are.equal(40, math.tointeger(ev.attrs.adv_n))
    assert.are.equal(1, math.tointeger(ev.attrs.label_base))   -- labels count from 1
    -- softmax rows
    local sums = ev.sets.noise_adv.probs:sum(2):to_table()
    for i = 1, #sums do assert.is_true(math.abs(sums[i] - 1) < 1e-4) end

    out, rc = h.run(string.format("%s recipes/analyze.lua %s --csv %s/evals.csv --plots", exe, h.quote(run),
                                  h.quote(dir)))
    assert.are.equal(0, rc, out)
    for _, row in ipairs{"| MNIST |", "| FMNIST |", "| Noise |", "| Adv. Noise |", "| Adv. Samples |"} do
      assert.truthy(out:find(row, 1, true), row .. " missing in\n" .. out)
    end
    local lines = {}
    for line in io.lines(dir .. "/evals.csv") do lines[#lines + 1] = line end
    assert.is_true(#lines >= 2)
    if os.execute("command -v gnuplot >/dev/null 2>&1") then
      local pngs = h.run("ls " .. h.quote(run) .. "/*.png | wc -l")
      assert.is_true(tonumber(pngs) >= 2, pngs)
    end
  end)

  it("refuses a bad --adv_n with a message naming it", function()
    local out, rc = h.run(string.format("%s recipes/evaluate.lua %s/checkpoint.h5 --data_dir %s --adv_n 0",
                                        exe, h.quote(run), h.quote(data)))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("--adv_n: expected a positive number of points, got 0", 1, true), out)
  end)

  it("refuses a checkpoint that is not there", function()
    local out, rc = h.run(string.format("%s recipes/evaluate.lua %s/none.h5 --data_dir %s", exe, h.quote(dir),
                                        h.quote(data)))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("none.h5", 1, true), out)
  end)

  teardown(function() os.execute("rm -rf " .. h.quote(dir)) end)
end)
