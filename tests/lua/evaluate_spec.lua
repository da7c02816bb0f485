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

  it("--scores writes every score per set and analyze gives one table per score", function()
    local base = "%s recipes/evaluate.lua %s/checkpoint.h5 --data_dir %s --out %s --n_test 64 --no_adv_noise "
      .. "--no_adv_samples --worst_n 0 --threads 1 --scores msp,maxlogit,energy,odin,mahalanobis --holdout 16"
    local fit_out = dir .. "/scores"
    -- with --attack, each score also under the attack on itself (the first 8 noise points)
    local out, rc = h.run(string.format(base .. " --attack paper --worst_n 8", exe, h.quote(run), h.quote(data),
                                        h.quote(fit_out)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("Mahalanobis fitted on the first 256 training images (layer relu3)", 1, true), out)
    assert.truthy(out:find("scores under attack: paper on each score, 8 noise points", 1, true), out)
    local ev = assert(evalfile.read(fit_out .. "/eval.h5"))
    for _, name in ipairs{"msp", "maxlogit", "energy", "odin", "mahalanobis"} do
      local set = assert(ev.sets["scores/" .. name], name)
      assert.are.equal(64, set.clean:size(1), name)
      assert.are.equal(64, set.noise:size(1), name)
      assert.are.equal(48, set.ood_fashion_mnist:size(1), name)
      assert.are.equal(8, set.noise_attacked:size(1), name)
      -- the worst case keeps the clean point when no attack beats it
      assert.is_true((set.noise_attacked - set.noise:narrow(1, 1, 8)):min() >= -1e-4, name)
    end
    -- MSP is the clean set's max softmax
    local msp, conf = ev.sets["scores/msp"].clean:to_table(), ev.sets.clean.probs:max(2):to_table()
    for i = 1, #msp do assert.is_true(math.abs(msp[i] - conf[i]) < 1e-6) end
    out, rc = h.run(string.format("%s recipes/analyze.lua %s --no_csv", exe, h.quote(fit_out)))
    assert.are.equal(0, rc, out)
    for _, head in ipairs{"MSP (max softmax probability)", "MaxLogit (", "Energy (", "ODIN (", "Mahalanobis ("} do
      assert.truthy(out:find(head, 1, true), head .. " missing in\n" .. out)
    end
    assert.truthy(out:find("| fashion_mnist |", 1, true), out)
    assert.truthy(out:find("| noise, attacked (paper on Energy, 8 points) |", 1, true), out)

    -- no training set: the fit takes held-out test images, which leave the in-distribution set
    local test_only = dir .. "/test_only"
    os.execute("mkdir -p " .. h.quote(test_only) .. "/mnist && cp " .. h.quote(data) .. "/mnist/t10k* "
               .. h.quote(test_only) .. "/mnist/")
    out, rc = h.run(string.format(base, exe, h.quote(run), h.quote(test_only), h.quote(dir .. "/held")))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("Mahalanobis fitted on the first 16 test images, held out", 1, true), out)
    ev = assert(evalfile.read(dir .. "/held/eval.h5"))
    assert.are.equal(48, ev.sets["scores/energy"].clean:size(1))
  end)

  it("refuses an unknown score", function()
    local out, rc = h.run(string.format("%s recipes/evaluate.lua %s/checkpoint.h5 --data_dir %s --scores msp,foo",
                                        exe, h.quote(run), h.quote(data)))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("--scores: unknown score 'foo' (known: msp,maxlogit,energy,odin,mahalanobis)", 1, true), out)
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
