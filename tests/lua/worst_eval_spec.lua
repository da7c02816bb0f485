-- recipes/evaluate.lua --attack and --certify end to end on fixture data, and analyze's
-- worst-case table, CSV columns (AAUC, GAUC) and sandwich plot: a LeNet trained for one epoch
-- on 256 IDX fixture images, 16 noise points, the paper's attack and bounds at two eps.
local umbra = require "umbra"
local evalfile = require "umbra.evalfile"
local h = dofile("tests/lua/helpers.lua")
local build = os.getenv("UMBRA_BUILD") or "build"
local exe = build .. "/umbra"

describe("evaluate --attack --certify", function()
  local dir = h.tmpdir("worst_eval_spec")
  teardown(function() os.execute("rm -rf " .. h.quote(dir)) end)
  local data = dir .. "/data"
  os.execute("mkdir -p " .. data .. "/mnist")
  local g = umbra.Generator(6)
  h.write_idx(data .. "/mnist", "train", 256, g)
  h.write_idx(data .. "/mnist", "t10k", 32, g)

  it("stores the worst case and the bounds, and analyze reports AAUC and GAUC", function()
    local out, rc = h.run(string.format("%s recipes/train.lua --dataset mnist --data_dir %s --n_train 256 --n_test 32 "
      .. "--batch_size 64 --n_epochs 1 --threads 1 --at_frac 0 --pgd_niter 0 --exp_name plain --runs_dir %s/runs",
      exe, h.quote(data), h.quote(dir)))
    assert.are.equal(0, rc, out)
    local run = h.run("ls -d " .. h.quote(dir) .. "/runs/plain/*/"):gsub("/?\n$", "")
    out, rc = h.run(string.format("%s recipes/evaluate.lua %s/checkpoint.h5 --data_dir %s --n_test 32 --adv_n 8 "
      .. "--adv_steps 2 --worst_n 16 --worst_attacks 2:0.1 --attack paper --certify 0.3 --certify 0.01 "
      .. "--no_adv_samples --threads 1", exe, h.quote(run), h.quote(data)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("worst case: paper on 16 noise points, bounds at eps 0.3, 0.01", 1, true), out)
    local ev = assert(evalfile.read(run .. "/eval.h5"))
    assert.are.equal(16, ev.sets.noise_worst.probs:size(1))
    assert.are.equal(16, ev.sets.noise_bound_1.bound:size(1))
    assert.are.equal("clean,pgd 80x0.02", ev.attrs.worst_names)
    local bound, conf = ev.sets.noise_bound_1.bound:to_table(), ev.sets.noise_worst.probs:max(2):to_table()
    for i = 1, 16 do assert(conf[i] <= bound[i] + 1e-5, "point " .. i .. " above its bound") end

    out, rc = h.run(string.format("%s recipes/analyze.lua %s --csv %s/evals.csv --plots", exe, h.quote(run),
                                  h.quote(dir)))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| run | attack | points | MMC | share >= 0.99 | AUC | AAUC | GAUC (eps 0.01) | "
                           .. "GAUC (eps 0.3) |", 1, true), out)
    -- the paper-shaped table carries AAUC and GAUC columns, filled in the Noise row only
    assert.truthy(out:find("|  | MMC | AUROC | FPR@95 | AAUC | GAUC (eps 0.01) | GAUC (eps 0.3) |", 1, true), out)
    local noise_row = out:match("\n(| Noise |[^\n]*)")
    local cells = {}
    for c in noise_row:gmatch("| ([^|]+) ") do cells[#cells + 1] = c end
    assert.are.equal(7, #cells, noise_row)
    for i = 2, 7 do assert.truthy(tonumber(cells[i]), noise_row) end
    assert.truthy(out:find("\n| Adv. Noise | [%d.]+ | [%d.]+ | [%d.]+ | – | – | – |"), out)
    assert.truthy(out:find("AAUC and GAUC (Noise row): conservative AUROCs", 1, true), out)
    local header
    for line in io.lines(dir .. "/evals.csv") do if line:find("^model_name") then header = line end end
    assert.truthy(header:find("AAUC noise_worst", 1, true) and header:find("GAUC noise eps=0.3", 1, true), header)
    if os.execute("command -v gnuplot >/dev/null 2>&1") then
      assert.truthy(io.open(run .. "/sandwich_noise.png"), "no sandwich plot")
    end
  end)

  it("refuses an unknown attack", function()
    local out, rc = h.run(string.format("%s recipes/evaluate.lua x.h5 --attack best", exe))
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("--attack: expected paper, worst3 or suite, got best", 1, true), out)
  end)
end)
