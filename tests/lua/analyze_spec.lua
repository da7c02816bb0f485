-- recipes/analyze.lua end to end on a hand-made eval.h5 whose numbers are computed by hand:
-- the Table 1 block (one run, and two side by side), the CSV (the authors' columns and order,
-- quoting, appending, refusing another header), the pictures when gnuplot is there and a
-- warning (but still the table and the CSV) when it is not. Also umbra.evalfile's checks.
local umbra = require "umbra"
local evalfile = require "umbra.evalfile"
local plot = require "umbra.plot"
local h = dofile("tests/lua/helpers.lua")

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
local dir = h.tmpdir("analyze_spec")

-- run the recipe in the temporary folder (env: e.g. "PATH=/nonexistent")
local function analyze(args, env)
  return capture(string.format("cd %s && %s %s %s/recipes/analyze.lua %s", dir, env or "", exe, root, args))
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function lines_of(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = line end
  return out
end

local function split(line)  -- enough for this file: one quoted field without inner quotes
  local out = {}
  line = line:gsub('"([^"]*)"', function(s) return (s:gsub(",", "\1")) end)
  for field in (line .. ","):gmatch("([^,]*),") do out[#out + 1] = field:gsub("\1", ",") end
  return out
end

local function zeros(n) return umbra.zeros({n}, "int64") end

-- max confidences: clean 0.9 0.8 0.7 0.6 (MMC 0.75, tau = 0.6 + 0.1 * 0.15 = 0.615); noise 0.5 0.4;
-- noise_adv 0.95 0.5; adv: fooled 0.7 and 0.34, resisted 0.9 (labels 1..3); FMNIST 0.8 0.34 0.6 0.66;
-- grayCIFAR-10 0.95 0.97. No noise_adv_worst.
local function fixture(run, name, dataset)
  os.execute("mkdir -p " .. run)
  local sets = {
    clean = {probs = umbra.tensor{{0.9, 0.05, 0.05}, {0.1, 0.8, 0.1}, {0.15, 0.15, 0.7}, {0.6, 0.2, 0.2}},
             labels = umbra.tensor({1, 2, 3, 2}, "int64")},
    noise = {probs = umbra.tensor{{0.5, 0.25, 0.25}, {0.3, 0.4, 0.3}}, labels = zeros(2)},
    noise_adv = {probs = umbra.tensor{{0.95, 0.03, 0.02}, {0.25, 0.25, 0.5}}, labels = zeros(2)},
    adv = {probs = umbra.tensor{{0.2, 0.7, 0.1}, {0.9, 0.05, 0.05}, {0.34, 0.33, 0.33}},
           labels = umbra.tensor({1, 1, 2}, "int64")},
    ood = {
      fashion_mnist = {probs = umbra.tensor{{0.8, 0.1, 0.1}, {0.33, 0.33, 0.34}, {0.2, 0.6, 0.2}, {0.17, 0.17, 0.66}},
                       labels = zeros(4), images = umbra.rand({2, 1, 4, 4}, umbra.Generator(1)),
                       image_index = umbra.tensor({1, 4}, "int64")},
      gray_cifar10 = {probs = umbra.tensor{{0.95, 0.03, 0.02}, {0.01, 0.97, 0.02}}, labels = zeros(2)},
    },
  }
  assert(evalfile.write(run .. "/eval.h5", sets, {model_name = name, dataset = dataset or "mnist", num_classes = 3,
                                                  test_error = 0.015, checkpoint = run .. "/checkpoint.h5"}))
end

local AUTHORS_COLUMNS = {
  "model_name", "err_rate_test", "resistance_adv", "auc_score_noise", "auc_score_noise_adv",
  "auc_score_noise_adv_more", "auc_score_adv", "auc_score_fashion_mnist", "auc_score_gray_cifar10",
  "Mean maximum confidence on clean", "Mean maximum confidence on noise",
  "Mean maximum confidence on noise_adv (noise + pgd)", "Mean maximum confidence on noise_adv_more (noise + pgd)",
  "Mean maximum confidence on adv (clean + pgd not_resisted)", "Mean maximum confidence on fashion_mnist",
  "Mean maximum confidence on gray_cifar10", "conf_tpr95", "noise95", "noise_adv95", "noise_adv_more95", "adv95",
  "fashion_mnist95", "gray_cifar1095",
}

describe("recipes/analyze.lua", function()
  fixture(dir .. "/plain", "plain, lenet")
  fixture(dir .. "/acet", "acet")

  it("prints the run's Table 1 block", function()
    local out, rc = analyze("plain")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| Trained on MNIST | plain, lenet (TE 1.50 %) |  |  |", 1, true), out)
    assert.truthy(out:find("|  | MMC | AUROC | FPR@95 |", 1, true), out)
    for _, row in ipairs{"| MNIST | 0.750 | – | – |", "| FMNIST | 0.600 | 0.750 | 0.500 |",
                         "| grayCIFAR-10 | 0.960 | 0.000 | 1.000 |", "| Noise | 0.450 | 1.000 | 0.000 |",
                         "| Adv. Noise | 0.725 | 0.500 | 0.500 |", "| Adv. Samples | 0.520 |"} do
      assert.truthy(out:find(row, 1, true), "missing row " .. row .. " in\n" .. out)
    end
    assert.falsy(out:find("worst of 3", 1, true), "no noise_adv_worst set, so no row")
    assert.truthy(out:find("Resistance to adversarial samples (Adv. Samples use only the points not resisted): "
                           .. "plain, lenet 33.3 %", 1, true), out)
  end)

  it("writes the authors' CSV columns, then appends without a second header", function()
    local lines = lines_of(dir .. "/evals.csv")
    assert.truthy(lines[1]:find("^# umbra analyze: the noise_adv_more columns"), lines[1])
    assert.are.same(AUTHORS_COLUMNS, split(lines[2]))
    local row = split(lines[3])
    local v = {}
    for i, c in ipairs(AUTHORS_COLUMNS) do v[c] = row[i] end
    assert.are.equal("plain, lenet", v.model_name)
    assert.truthy(lines[3]:find('^"plain, lenet",0.015,'), "a name with a comma is quoted: " .. lines[3])
    local function near(expected, c, tol)
      local got = tonumber(v[c])
      assert(got and math.abs(got - expected) <= (tol or 1e-6),
             c .. " = " .. tostring(v[c]) .. ", expected " .. expected)
    end
    near(1 / 3, "resistance_adv", 1e-15)
    near(1, "auc_score_noise", 0); near(0.5, "auc_score_noise_adv", 0); near(0.8125, "auc_score_adv", 0)
    near(0.75, "auc_score_fashion_mnist", 0); near(0, "auc_score_gray_cifar10", 0)
    near(0.75, "Mean maximum confidence on clean")
    near(0.52, "Mean maximum confidence on adv (clean + pgd not_resisted)")
    near(0.615, "conf_tpr95"); near(0, "noise95", 0); near(0.5, "adv95", 0); near(1, "gray_cifar1095", 0)
    assert.are.equal("nan", v.auc_score_noise_adv_more)
    assert.are.equal("nan", v.noise_adv_more95)
    local out, rc = analyze("acet")
    assert.are.equal(0, rc, out)
    lines = lines_of(dir .. "/evals.csv")
    assert.are.equal(4, #lines)
    assert.truthy(lines[4]:find("^acet,0.015,"), lines[4])
  end)

  it("refuses to append a row with other columns, and writes nothing", function()
    os.execute("mkdir -p " .. dir .. "/cifar")
    local sets = {clean = {probs = umbra.tensor{{0.9, 0.1}}, labels = umbra.tensor({1}, "int64")},
                  ood = {svhn = {probs = umbra.tensor{{0.5, 0.5}}, labels = zeros(1)}}}
    -- no test_error attribute: the error of the clean outputs
    assert(evalfile.write(dir .. "/cifar/eval.h5", sets, {model_name = "resnet", dataset = "cifar10", num_classes = 2}))
    local before = lines_of(dir .. "/evals.csv")
    local out, rc = analyze("cifar")
    assert.are.equal(1, rc)
    assert.truthy(out:find("evals.csv has other columns than run resnet", 1, true), out)
    assert.truthy(out:find("column 8 is 'auc_score_fashion_mnist' there and 'auc_score_svhn' here", 1, true), out)
    assert.are.same(before, lines_of(dir .. "/evals.csv"))
    out, rc = analyze("cifar --csv cifar.csv")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| Trained on CIFAR-10 | resnet (TE 0.00 %) |", 1, true), out)
    assert.truthy(out:find("| SVHN | 0.500 | 1.000 | 0.000 |", 1, true), out)
  end)

  it("prints several runs side by side under their --names", function()
    local out, rc = analyze("plain acet --names Plain,ACET --no_csv")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("| Trained on MNIST | Plain (TE 1.50 %) |  |  | ACET (TE 1.50 %) |  |  |", 1, true), out)
    assert.truthy(out:find("| Noise | 0.450 | 1.000 | 0.000 | 0.450 | 1.000 | 0.000 |", 1, true), out)
    out, rc = analyze("plain acet --names Plain --no_csv")
    assert.are.equal(1, rc)
    assert.truthy(out:find("--names has 1 names for 2 runs", 1, true), out)
  end)

  it("draws histograms, ROC curves and the image grid when gnuplot is there", function()
    if not plot.available() then
      pending("gnuplot is not installed")
      return
    end
    local out, rc = analyze("plain --plots --no_csv")
    assert.are.equal(0, rc, out)
    for _, f in ipairs{"conf_clean", "conf_noise", "conf_noise_adv", "conf_adv", "conf_fashion_mnist",
                       "conf_gray_cifar10", "rocs", "top_fashion_mnist"} do
      assert.is_true(exists(dir .. "/plain/" .. f .. ".png"), f .. ".png is missing")
    end
    assert.is_false(exists(dir .. "/plain/conf_noise_adv_worst.png"))
    assert.is_false(exists(dir .. "/plain/top_gray_cifar10.png"), "no images stored, no grid")
  end)

  it("titles the pictures with --names (gnuplot's scripts captured by a stand-in)", function()
    local fake = dir .. "/fakebin"
    os.execute("mkdir -p " .. fake)
    local f = assert(io.open(fake .. "/gnuplot", "w"))
    f:write("#!/bin/sh\ncat \"$1\" >> " .. dir .. "/scripts.gp\n")
    f:close()
    os.execute("chmod +x " .. fake .. "/gnuplot; rm -f " .. dir .. "/scripts.gp")
    local out, rc = analyze("plain acet --plots --no_csv --names Plain,ACET", "PATH=" .. fake .. ":$PATH")
    assert.are.equal(0, rc, out)
    local scripts = assert(io.open(dir .. "/scripts.gp")):read("a")
    assert.truthy(scripts:find("set title 'Plain: max confidence on", 1, true), scripts:sub(1, 400))
    assert.truthy(scripts:find("set title 'ACET: ROC", 1, true))
  end)

  it("warns without gnuplot and still prints the table and writes the CSV", function()
    local out, rc = analyze("acet --plots --csv nognuplot.csv", "PATH=/nonexistent")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("analyze: warning: gnuplot is not installed", 1, true), out)
    assert.truthy(out:find("| Noise | 0.450 |", 1, true), out)
    assert.are.equal(3, #lines_of(dir .. "/nognuplot.csv"))
  end)

  it("says what is wrong with an evaluation file", function()
    local out, rc = analyze("nowhere --no_csv")
    assert.are.equal(1, rc)
    assert.truthy(out:find("cannot open nowhere (run recipes/evaluate.lua first?)", 1, true), out)
    os.execute("mkdir -p " .. dir .. "/bad")
    assert(evalfile.write(dir .. "/bad/eval.h5", {clean = {probs = umbra.tensor{{0.5, 0.5}},
                                                           labels = umbra.tensor({1}, "int64")},
                                                  noise = {probs = umbra.tensor{{0.5, 0.5}}}},
                          {num_classes = 2}))
    local ev, err = evalfile.read(dir .. "/bad")
    assert.is_nil(ev)
    assert.truthy(err:find("/noise lacks labels", 1, true), err)
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)
