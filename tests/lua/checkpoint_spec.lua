-- umbra.checkpoint: a model, its optimiser, a generator, configuration and extra tensors
-- saved and loaded back bit for bit; refusals naming the file and the first offending
-- tensor (missing, wrong shape, unexpected, corrupt or truncated file) with the model left
-- untouched and nothing leaked; the files read by h5dump and h5py.
local umbra = require "umbra"
local nn, optim, checkpoint = umbra.nn, umbra.optim, umbra.checkpoint
local core = umbra.core
local helpers = dofile("tests/lua/helpers.lua")
local quote, run, tmpdir, settle = helpers.quote, helpers.run, helpers.tmpdir, helpers.settle

local function same(a, b)
  if a:dtype() ~= b:dtype() then return false end
  local sa, sb = a:size(), b:size()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  if a:numel() == 0 then return true end
  if a:dtype() == "int64" then a, b = a:float(), b:float() end   -- small values: exact
  return a:eq(b):float():min() == 1
end

-- A LeNet after one Adam step, so that parameters and moments are all non-trivial.
local function trained(seed, classes)
  local g = umbra.Generator(seed)
  local m = require("models.lenet"){generator = g, num_classes = classes or 10}
  local opt = optim.Adam(m:parameters(), {lr = 1e-3})
  local x = umbra.rand({4, 1, 28, 28}, g)
  local y = umbra.tensor({1, 2, 3, 4}, "int64")
  local ce = nn.CrossEntropy()
  m:zero_grad()
  m:backward(x, ce:backward(m:forward(x), y))
  opt:step()
  return m, opt, g
end

local dir = tmpdir("ckpt_spec")
local path = dir .. "/ck.h5"

describe("umbra.checkpoint", function()
  local m, opt, g = trained(1)
  local config = {lr = 1e-3, dataset = "mnist", augment = true, schedule = {0.5, 0.75}, architecture = "lenet"}
  local extra = umbra.tensor({{1, 2}, {3, 4}})
  teardown(function() os.execute("rm -rf " .. quote(dir)) end)

  it("round-trips model, optimiser, generator, config and extra tensors bit for bit", function()
    assert.is_true(checkpoint.save(path, {model = m, optim = opt, generator = g, epoch = 7, step = 3500,
                                          config = config, extra_tensors = {mean = extra}}))
    local m2, opt2, g2 = trained(2)
    local info = assert(checkpoint.load(path, {model = m2, optim = opt2, generator = g2}))
    local p1, p2 = m:named_parameters(), m2:named_parameters()
    for name, t in pairs(p1) do assert.is_true(same(t, p2[name]), name) end
    local s1, s2 = opt:state(), opt2:state()
    assert.are.equal(s1.step, s2.step)
    for slot, list in pairs(s1.slots) do
      for i, t in ipairs(list) do assert.is_true(same(t, s2.slots[slot][i]), slot .. i) end
    end
    assert.are.same(g:state(), g2:state())
    assert.are.same({7, 3500, "lenet"}, {info.epoch, info.step, info.architecture})
    assert.are.same(config, info.config)
    assert.is_true(same(extra, info.extra_tensors.mean))
    assert.are.equal("umbra-checkpoint", info.attributes.format)
    local files = run("ls -a " .. quote(dir))
    assert.are.equal(".\n..\nck.h5\n", files)            -- no temporary left behind
  end)

  it("accepts plain tables of tensors and reads everything back", function()
    local p = dir .. "/plain.h5"
    local w = umbra.rand({3, 2}, umbra.Generator(5))
    local steps = umbra.tensor({5, -6}, "int64")
    assert.is_true(checkpoint.save(p, {model = {params = {["a.w"] = w}, buffers = {["a.steps"] = steps}},
                                       epoch = 1}))
    local w2, steps2 = umbra.zeros(3, 2), umbra.zeros({2}, "int64")
    assert(checkpoint.load(p, {model = {params = {["a.w"] = w2}, buffers = {["a.steps"] = steps2}}}))
    assert.is_true(same(w, w2) and same(steps, steps2))
    local all = assert(checkpoint.read(p))
    assert.are.same({"model/buffers/a.steps", "model/params/a.w"}, all.names)
    assert.are.same({3, 2}, all.shapes["model/params/a.w"])
    assert.are.equal("int64", all.dtypes["model/buffers/a.steps"])
    assert.is_true(same(w, all.tensors["model/params/a.w"]))
  end)

  it("refuses mismatches, naming the file and the first offender, leaving the model untouched", function()
    local before = settle()
    local other = trained(3, 5)
    local snapshot = {}
    for name, t in pairs(other:named_parameters()) do snapshot[name] = t:clone() end
    local ok, msg = checkpoint.load(path, {model = other})
    assert.is_nil(ok)
    assert.is_truthy(msg:find(path .. ": model/params/fc2.bias has shape 10 in the checkpoint, expected 5", 1, true)
                     or msg:find(path .. ": model/params/fc2.weight has shape", 1, true), msg)
    for name, t in pairs(other:named_parameters()) do assert.is_true(same(t, snapshot[name]), name) end
    local w = umbra.zeros(2)
    ok, msg = checkpoint.load(path, {model = {params = {["conv1.weight"] = w}}})
    assert.is_nil(ok)
    assert.is_truthy(msg:find("tensor model/params/conv1.bias of the checkpoint has no counterpart in the model",
                              1, true), msg)
    local full = {}
    for name, t in pairs(m:named_parameters()) do full[name] = t:clone() end
    full["extra.weight"] = umbra.zeros(3)
    ok, msg = checkpoint.load(path, {model = {params = full}})
    assert.is_nil(ok)
    assert.are.equal(path .. ": no tensor model/params/extra.weight in the checkpoint", msg)
    ok, msg = checkpoint.load(dir .. "/missing.h5", {model = m})
    assert.is_nil(ok)
    assert.is_truthy(msg:find("missing.h5: cannot open", 1, true), msg)
    ok, msg = checkpoint.load(dir .. "/plain.h5", {model = {params = {["a.w"] = umbra.zeros(3, 2)},
                                                            buffers = {["a.steps"] = umbra.zeros({2}, "int64")}},
                                                   optim = opt})
    assert.is_nil(ok)
    assert.are.equal(dir .. "/plain.h5: the checkpoint holds no optimiser state", msg)
    other, snapshot, full, w = nil, nil, nil, nil -- luacheck: ignore 311 (drops them for settle())
    assert.are.equal(before, settle())
  end)

  it("refuses truncated, corrupt and foreign files", function()
    local before = settle()
    local bad = dir .. "/bad.h5"
    run("head -c 5000 " .. quote(path) .. " > " .. quote(bad))
    local ok, msg = checkpoint.load(bad, {model = m})
    assert.is_nil(ok)
    assert.is_truthy(msg:find(bad .. ": the checkpoint has 5000 bytes, its header says ", 1, true), msg)
    assert.is_truthy(msg:find("(truncated or appended to)", 1, true), msg)
    local f = assert(io.open(bad, "wb"))
    f:write(string.rep("not hdf5 ", 100))
    f:close()
    ok, msg = checkpoint.load(bad, {model = m})
    assert.is_nil(ok)
    assert.is_truthy(msg:find("not an umbra checkpoint (no \"UMBRA-CHECKPOINT\" header", 1, true), msg)
    assert.is_true(core.h5_save(bad, {}, {}))
    run("/usr/bin/python3 -c \"import h5py; f = h5py.File('" .. bad .. "', 'r+'); f.attrs['format'] = 'keras'\"")
    ok, msg = checkpoint.load(bad, {model = m})
    assert.is_nil(ok)
    if msg:find("digest", 1, true) then   -- an edit through h5py breaks the digest
      assert.is_truthy(msg:find(bad .. ": checkpoint digest mismatch", 1, true), msg)
    end
    assert.are.equal(before, settle())
  end)

  it("fails cleanly when the file cannot be written, keeping the old one", function()
    local ok, msg = checkpoint.save(dir .. "/no/such/dir/ck.h5", {model = m})
    assert.is_nil(ok)
    assert.is_truthy(msg:find("no/such/dir/ck.h5.tmp.", 1, true), msg)
    assert.has_error(function() checkpoint.save(path, {config = {x = umbra.zeros(2)}}) end)
    assert.has_error(function() checkpoint.save(path, {config = {["a/b"] = 1}}) end)
    assert(checkpoint.load(path, {model = m}))
  end)

  it("is readable by h5dump and h5py", function()
    local out, rc = run("h5dump -A " .. quote(path))
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find('"umbra-checkpoint"', 1, true), out)
    out = run("h5dump -H -d /model/params/conv1.weight " .. quote(path))
    local s = m:named_parameters()["conv1.weight"]:size()
    assert.is_truthy(out:find("SIMPLE { ( " .. table.concat(s, ", ") .. " )", 1, true), out)
    rc = select(2, run("/usr/bin/python3 -c 'import h5py' "))
    if rc ~= 0 then
      print("SKIP checkpoint: h5py not installed (python3-h5py)")
      return
    end
    out, rc = run("/usr/bin/python3 -c \"import h5py; f = h5py.File('" .. path .. "', 'r'); " ..
                  "print(f.attrs['format'], f.attrs['epoch'], f['model/params/fc2.bias'].shape, " ..
                  "float(f['model/params/fc2.bias'][0]))\"")
    assert.are.equal(0, rc, out)
    local b = m:named_parameters()["fc2.bias"][1]
    assert.is_truthy(out:find("umbra-checkpoint 7 (10,) ", 1, true), out)
    assert.is_true(math.abs(tonumber(out:match("(%S+)%s*$")) - b) < 1e-6, out)
  end)
end)
