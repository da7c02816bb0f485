-- TensorFlow checkpoints from Lua: umbra.core.tf_checkpoint_open on checkpoints written
-- here byte by byte (LevelDB table + BundleEntryProto), its errors on damaged copies, and
-- scripts/import-tf-checkpoint (--list, and the import of a ResNetSmall checkpoint made
-- from a random umbra model). With UMBRA_PAPER_MODELS set, also the authors' models.
local umbra = require "umbra"
local core = umbra.core
local build = os.getenv("UMBRA_BUILD") or "build"

-- ---- CRC32C and the encodings, in plain Lua, to write the fixture ----
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1 == 1) and ((c >> 1) ~ 0x82f63b78) or (c >> 1) end
  crc_table[i] = c
end
local function crc32c(s)
  local c = 0xffffffff
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xff] ~ (c >> 8) end
  return c ~ 0xffffffff
end
local function mask(c) return ((((c >> 15) | (c << 17)) & 0xffffffff) + 0xa282ead8) & 0xffffffff end

local function varint(v)
  local out = {}
  while v >= 0x80 do
    out[#out + 1] = string.char((v & 0x7f) | 0x80)
    v = v >> 7
  end
  out[#out + 1] = string.char(v)
  return table.concat(out)
end
local function field(num, wire, payload)
  if wire == 2 then return varint(num << 3 | 2) .. varint(#payload) .. payload end
  if wire == 5 then return varint(num << 3 | 5) .. string.pack("<I4", payload) end
  return varint(num << 3) .. varint(payload)
end

-- BundleEntryProto for bytes at offset in the data file.
local function entry(dtype, shape, offset, bytes)
  local dims = {}
  for _, s in ipairs(shape) do dims[#dims + 1] = field(2, 2, field(1, 0, s)) end
  return field(1, 0, dtype) .. field(2, 2, table.concat(dims)) .. field(4, 0, offset) ..
         field(5, 0, #bytes) .. field(6, 5, mask(crc32c(bytes)))
end

-- A block of entries (no prefix sharing, one restart point) with its 5-byte trailer.
local function block(kvs)
  local parts = {}
  for _, kv in ipairs(kvs) do
    parts[#parts + 1] = varint(0) .. varint(#kv[1]) .. varint(#kv[2]) .. kv[1] .. kv[2]
  end
  local body = table.concat(parts) .. string.pack("<I4I4", 0, 1)
  return body .. "\0" .. string.pack("<I4", mask(crc32c(body .. "\0"))), #body
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- Write PREFIX.index and PREFIX.data-00000-of-00001 holding vars = {{name, dtype (1 float32,
-- 3 int32), shape, bytes}, ...}; returns the prefix and the size of the data block.
local function write_checkpoint(prefix, vars)
  table.sort(vars, function(a, b) return a[1] < b[1] end)
  local kvs, data = {{"", field(1, 0, 1)}}, {}
  local offset = 0
  for _, v in ipairs(vars) do
    kvs[#kvs + 1] = {v[1], entry(v[2], v[3], offset, v[4])}
    data[#data + 1] = v[4]
    offset = offset + #v[4]
  end
  write(prefix .. ".data-00000-of-00001", table.concat(data))
  local dblock, dsize = block(kvs)
  local meta, msize = block{}
  local index, isize = block{{"t", varint(0) .. varint(dsize)}}
  local footer = varint(#dblock) .. varint(msize) .. varint(#dblock + #meta) .. varint(isize)
  footer = footer .. string.rep("\0", 40 - #footer) .. string.pack("<I8", 0xdb4775248b80fb57)
  write(prefix .. ".index", dblock .. meta .. index .. footer)
  return prefix
end

-- Variables: a/bias float32 [3], a/kernel float32 [1, 1, 2, 3], global_step int32 scalar.
local function make_checkpoint(dir)
  return write_checkpoint(dir .. "/m-1", {
    {"a/bias", 1, {3}, string.pack("<fff", 0.5, -1.5, 2.25)},
    {"a/kernel", 1, {1, 1, 2, 3}, string.pack("<ffffff", 1, 2, 3, 4, 5, 6)},
    {"global_step", 3, {}, string.pack("<i4", 1234)}})
end

local function float_bytes(t)
  local parts = {}
  for i, v in ipairs(t:contiguous():reshape(-1):to_table()) do parts[i] = string.pack("<f", v) end
  return table.concat(parts)
end

-- The TensorFlow name of each umbra ResNetSmall tensor (models/resnet_small.lua's table).
local function tf_name(path)
  local leaf = {weight = "gamma", bias = "beta", running_mean = "moving_mean",
                running_var = "moving_variance"}
  if path == "block_init.conv.weight" then return "block_init/conv/weights" end
  if path == "logit.fc.weight" then return "logit/fc/weights" end
  if path == "logit.fc.bias" then return "logit/fc/biases" end
  local l = path:match("^unit_last%.bn%.([%w_]+)$")
  if l then return "unit_last/batch_normalization/" .. leaf[l] end
  local block_, where, l2 = path:match("^(block_%d_%d)%.(%w+%.%w+)%.([%w_]+)$")
  local scope = ({["pre.bn1"] = "shared_activation/batch_normalization",
                  ["main.bn1"] = "residual_only_activation/batch_normalization",
                  ["main.bn2"] = "sub2/batch_normalization",
                  ["main.conv1"] = "sub1/conv1", ["main.conv2"] = "sub2/conv2"})[where]
  return block_ .. "/" .. scope .. "/" .. (l2 == "weight" and where:find("conv") and "weights" or leaf[l2])
end

-- A TensorFlow checkpoint of a randomly initialised umbra ResNetSmall (HWIO kernels, the
-- dense weight as [64, K], Momentum slots, the step, random running statistics), and
-- {path = tensor} of the values an import must give.
local function make_resnet_checkpoint(dir, k, tweak)
  local model = require("models.resnet_small"){num_classes = k, seed = 7}
  local vars = {{"Variable", 3, {}, string.pack("<i4", 4321)}}
  local expected = {}
  local function add(path, t)
    if path:find("running_") then t = t:add(umbra.rand(t:size(), umbra.Generator(#vars))) end
    expected[path] = t
    local name = tf_name(path)
    if t:dim() == 4 then t = t:permute(3, 4, 2, 1) elseif t:dim() == 2 then t = t:t() end
    t = t:contiguous()
    vars[#vars + 1] = {name, 1, t:size(), float_bytes(t)}
    if not path:find("running_") then
      vars[#vars + 1] = {name .. "/Momentum", 1, t:size(), float_bytes(t)}
    end
  end
  for path, t in pairs(model:named_parameters()) do add(path, t) end
  for path, t in pairs(model:named_buffers()) do add(path, t) end
  if tweak then tweak(vars) end
  return write_checkpoint(dir .. "/resnet-100", vars), expected
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function flip(path, at)
  local s = read_file(path)
  write(path, s:sub(1, at - 1) .. string.char(s:byte(at) ~ 0xff) .. s:sub(at + 1))
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function run(cmdline)
  local p = io.popen(cmdline .. " 2>&1; echo \"<rc=$?>\"")
  local out = p:read("a")
  p:close()
  local body, rc = out:match("^(.*)<rc=(%d+)>\n$")
  return body, tonumber(rc)
end

-- scripts/import-tf-checkpoint with these arguments, run by this build's executable:
-- output and exit status.
local function import(...)
  local words = {"UMBRA=" .. quote(build .. "/umbra"), "scripts/import-tf-checkpoint"}
  for _, a in ipairs{...} do words[#words + 1] = quote(a) end
  return run(table.concat(words, " "))
end

local tmpdirs = {}
local function tmpdir()
  local name = dofile("tests/lua/helpers.lua").tmpdir("tfckpt")
  tmpdirs[#tmpdirs + 1] = name
  return name
end

teardown(function()
  for _, d in ipairs(tmpdirs) do os.execute("rm -rf " .. quote(d)) end
end)

describe("umbra.core.tf_checkpoint_open", function()
  it("lists variables in name order with dtypes and shapes", function()
    local prefix = make_checkpoint(tmpdir())
    local ck = assert(core.tf_checkpoint_open(prefix))
    assert.are.equal(3, #ck)
    assert.are.same({
      {name = "a/bias", dtype = "float32", shape = {3}},
      {name = "a/kernel", dtype = "float32", shape = {1, 1, 2, 3}},
      {name = "global_step", dtype = "int32", shape = {}}}, ck:list())
    assert.is_true(ck:has("global_step"))
    assert.is_false(ck:has("a"))
    assert.is_truthy(tostring(ck):find("3 variables", 1, true))
    ck:close()
  end)

  it("reads tensors in TensorFlow's layout, int32 as int64", function()
    local prefix = make_checkpoint(tmpdir())
    local ck <close> = assert(core.tf_checkpoint_open(prefix))
    local k = ck:read("a/kernel")
    assert.are.same({1, 1, 2, 3}, k:size())
    assert.are.equal("float32", k:dtype())
    assert.are.same({{{{1, 2, 3}, {4, 5, 6}}}}, k:to_table())
    assert.are.same({0.5, -1.5, 2.25}, ck:read("a/bias"):to_table())
    local step = ck:read("global_step")
    assert.are.equal("int64", step:dtype())
    assert.are.equal(0, step:dim())
    assert.are.equal(1234, step:item())
  end)

  it("raises on misuse: unknown variable, closed checkpoint", function()
    local prefix = make_checkpoint(tmpdir())
    local ck = assert(core.tf_checkpoint_open(prefix))
    local ok, msg = pcall(ck.read, ck, "nope")
    assert.is_false(ok)
    assert.is_truthy(msg:find("no variable 'nope'", 1, true))
    ck:close()
    ck:close()
    ok, msg = pcall(ck.list, ck)
    assert.is_false(ok)
    assert.is_truthy(msg:find("closed", 1, true))
    assert.has_error(function() core.tf_checkpoint_open() end)
  end)

  it("returns nil and a message for missing, corrupt and truncated files", function()
    local dir = tmpdir()
    local ck, msg = core.tf_checkpoint_open(dir .. "/absent")
    assert.is_nil(ck)
    assert.is_truthy(msg:find("cannot open TensorFlow checkpoint index", 1, true))
    local prefix = make_checkpoint(dir)
    flip(prefix .. ".index", 20)
    ck, msg = core.tf_checkpoint_open(prefix)
    assert.is_nil(ck)
    assert.is_truthy(msg:find("block CRC mismatch", 1, true))
    assert.is_truthy(msg:find(prefix .. ".index", 1, true))

    prefix = make_checkpoint(dir)
    flip(prefix .. ".data-00000-of-00001", 14)
    ck = assert(core.tf_checkpoint_open(prefix))
    assert.are.equal(3, #ck:read("a/bias"):to_table())
    local t, rmsg = ck:read("a/kernel")
    assert.is_nil(t)
    assert.is_truthy(rmsg:find("tensor CRC mismatch for variable 'a/kernel'", 1, true))
    ck:close()

    prefix = make_checkpoint(dir)
    local data = read_file(prefix .. ".data-00000-of-00001")
    write(prefix .. ".data-00000-of-00001", data:sub(1, 30))
    ck, msg = core.tf_checkpoint_open(prefix)
    assert.is_nil(ck)
    assert.is_truthy(msg:find("shorter than variable 'a/kernel' needs", 1, true))

    prefix = make_checkpoint(dir)
    local index = read_file(prefix .. ".index")
    write(prefix .. ".index", index:sub(1, #index - 3))
    ck, msg = core.tf_checkpoint_open(prefix)
    assert.is_nil(ck)
    assert.is_truthy(msg:find("bad magic", 1, true))
  end)
end)

describe("scripts/import-tf-checkpoint --list", function()
  it("prints names, dtypes, shapes and the trainable count", function()
    local prefix = make_checkpoint(tmpdir())
    local out, rc = import("--list", prefix)
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("a/bias       float32  [3]\n", 1, true), out)
    assert.is_truthy(out:find("a/kernel     float32  [1, 1, 2, 3]\n", 1, true), out)
    assert.is_truthy(out:find("global_step  int32    []\n", 1, true), out)
    assert.is_truthy(out:find("3 variables; 9 trainable parameters", 1, true), out)
  end)

  it("refuses to overwrite one of its inputs", function()
    local prefix = make_checkpoint(tmpdir())
    local f = assert(io.open(prefix .. ".index", "rb"))
    local before = f:read("a")
    f:close()
    for _, target in ipairs{prefix .. ".index", prefix .. ".data-00000-of-00001"} do
      local out, rc = import(prefix, target)
      assert.are.equal(1, rc, out)
      assert.is_truthy(out:find("refusing to write " .. target .. ": it is an input", 1, true), out)
    end
    f = assert(io.open(prefix .. ".index", "rb"))
    assert.are.equal(before, f:read("a"))
    f:close()
  end)

  it("fails with the reader's message and status 1", function()
    local out, rc = import("--list", "/nonexistent/x")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("import-tf-checkpoint: cannot open TensorFlow checkpoint index " ..
                              "'/nonexistent/x.index'", 1, true), out)
  end)
end)

describe("scripts/import-tf-checkpoint PREFIX OUT.h5", function()
  local function max_diff(a, b) return (a - b):abs():max() end

  local function check_state(model, expected)
    local got = model:named_parameters()
    for path, t in pairs(model:named_buffers()) do got[path] = t end
    local n = 0
    for path, t in pairs(expected) do
      assert.are.equal(0, max_diff(t, got[path]), path)
      n = n + 1
    end
    assert.are.equal(97, n)   -- 59 parameters + 38 running statistics
  end

  it("maps every variable to resnet_small and writes an umbra checkpoint", function()
    local dir = tmpdir()
    local prefix, source = make_resnet_checkpoint(dir, 10)
    local out, rc = import(prefix, dir .. "/m.h5")
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("resnet_small, 10 classes, 269,722 parameters, step 4321", 1, true), out)
    local model = require("models.resnet_small"){num_classes = 10, seed = 99}
    local info = assert(umbra.checkpoint.load(dir .. "/m.h5", {model = model}))
    assert.are.equal(4321, info.step)
    assert.are.equal("resnet_small", info.config.architecture)
    assert.are.equal(10, info.config.num_classes)
    assert.are.equal(1.001e-5, info.config.bn_eps)
    assert.are.equal(prefix, info.config.source)
    check_state(model, source)
  end)

  it("records the data set the checkpoint's path names, so evaluate.lua needs no --dataset", function()
    local dir = tmpdir()
    os.execute("mkdir -p " .. dir .. "/cifar100_ceda")
    local prefix = make_resnet_checkpoint(dir .. "/cifar100_ceda", 100)
    local out, rc = import(prefix, dir .. "/m.h5")
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("data set cifar100", 1, true), out)
    local model = require("models.resnet_small"){num_classes = 100, seed = 1}
    assert.are.equal("cifar100", assert(umbra.checkpoint.load(dir .. "/m.h5", {model = model})).config.dataset)
    local tf_import = require "umbra.tf_import"
    assert.are.equal("cifar10", tf_import.dataset_of("exps/2019-01-01 10:00:00_dataset=cifar10 model=resnet_small-100"))
    assert.are.equal("svhn", tf_import.dataset_of("paper-models/svhn_acet/model-100"))
    assert.are.equal("cifar100", tf_import.dataset_of("/x/cifar100_plain/m-100"))
    assert.is_nil(tf_import.dataset_of("/x/mine/m-100"))
    -- nothing in the name: a warning, and --dataset sets it
    local plain = tmpdir()
    prefix = make_resnet_checkpoint(plain, 10)
    out, rc = import(prefix, plain .. "/m.h5")
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("evaluate.lua will need --dataset", 1, true), out)
    out, rc = import("--dataset", "svhn", prefix, plain .. "/n.h5")
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("data set svhn", 1, true), out)
  end)

  it("loads straight into a model with umbra.tf_import", function()
    local dir = tmpdir()
    local prefix, source = make_resnet_checkpoint(dir, 100)
    local model, info = assert(umbra.tf_import.resnet_small(prefix))
    assert.are.equal(100, info.num_classes)
    assert.are.equal(4321, info.step)
    assert.are.same({100, 64}, model:named_parameters()["logit.fc.weight"]:size())
    check_state(model, source)
  end)

  it("refuses variables and shapes that do not fit the architecture, by name", function()
    local dir = tmpdir()
    local prefix = make_checkpoint(dir)
    local out, rc = import(prefix, dir .. "/x.h5")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("give --num_classes", 1, true), out)
    out, rc = import("--num_classes", "10", prefix, dir .. "/x.h5")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("variable 'a/bias' [3] is not part of the resnet_small architecture",
                              1, true), out)

    prefix = make_resnet_checkpoint(dir, 10, function(vars)
      for _, v in ipairs(vars) do
        if v[1] == "block_2_1/sub1/conv1/weights" then
          v[3], v[4] = {3, 3, 16, 32}, v[4]:sub(1, 4 * 3 * 3 * 16 * 32)
        end
      end
    end)
    out, rc = import(prefix, dir .. "/x.h5")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("variable 'block_2_1/sub1/conv1/weights' is float32 [3, 3, 16, 32]; " ..
                              "resnet_small with 10 classes expects float32 [3, 3, 32, 32] " ..
                              "(umbra block_2_1.main.conv1.weight [32, 32, 3, 3])", 1, true), out)
    out, rc = import("--num_classes", "100", prefix, dir .. "/x.h5")
    assert.are.equal(1, rc, out)
    assert.is_falsy(io.open(dir .. "/x.h5"))

    prefix = make_resnet_checkpoint(dir, 10, function(vars)
      for i = #vars, 1, -1 do
        if vars[i][1]:find("^unit_last/batch_normalization/gamma") then table.remove(vars, i) end
      end
    end)
    out, rc = import(prefix, dir .. "/x.h5")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("no variable for 1 of resnet_small's tensors, the first " ..
                              "unit_last.bn.weight", 1, true), out)
  end)
end)

local models = os.getenv("UMBRA_PAPER_MODELS")

local function paper_prefix(folder)
  local p = io.popen("ls " .. quote(models .. "/" .. folder) .. "/*.index")
  local name = p:read("l")
  p:close()
  return name and name:gsub("%.index$", "")
end

describe("the authors' released checkpoints", function()
  if not models or models == "" then
    pending("UMBRA_PAPER_MODELS not set")
    return
  end

  it("lists 157 variables and the paper's parameter counts", function()
    local out, rc = import("--list", paper_prefix("cifar100_ceda"))
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("block_init/conv/weights%s+float32  %[3, 3, 3, 16%]\n"), out)
    assert.is_truthy(out:find("logit/fc/weights%s+float32  %[64, 100%]\n"), out)
    assert.is_truthy(out:find("Variable%s+int32    %[%]\n"), out)
    assert.is_truthy(out:find("157 variables; 275,572 trainable parameters", 1, true), out)
    out = import("--list", paper_prefix("svhn_acet"))
    assert.is_truthy(out:find("157 variables; 269,722 trainable parameters", 1, true), out)
  end)

  it("reads every tensor with its CRC verified", function()
    local ck <close> = assert(core.tf_checkpoint_open(paper_prefix("cifar10_acet")))
    for _, e in ipairs(ck:list()) do
      local t = assert(ck:read(e.name))
      assert.are.same(e.shape, t:size())
    end
    assert.are.equal(39000, ck:read("Variable"):item())
  end)

  it("imports a model: OIHW kernels, transposed dense weight, running statistics", function()
    local dir = tmpdir()
    local prefix = paper_prefix("cifar100_plain")
    local out, rc = import(prefix, dir .. "/c100.h5")
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("resnet_small, 100 classes, 275,572 parameters, step 39000", 1, true), out)
    local model = require("models.resnet_small"){num_classes = 100}
    local info = assert(umbra.checkpoint.load(dir .. "/c100.h5", {model = model}))
    assert.are.equal(prefix, info.config.source)
    local ck <close> = assert(core.tf_checkpoint_open(prefix))
    local p, b = model:named_parameters(), model:named_buffers()
    local function same(a, c) assert.are.equal(0, (a - c):abs():max()) end
    same(ck:read("block_3_1/sub2/conv2/weights"):permute(4, 3, 1, 2),
         p["block_3_1.main.conv2.weight"])
    same(ck:read("logit/fc/weights"):t(), p["logit.fc.weight"])
    same(ck:read("block_2_0/shared_activation/batch_normalization/gamma"),
         p["block_2_0.pre.bn1.weight"])
    same(ck:read("block_2_2/residual_only_activation/batch_normalization/moving_variance"),
         b["block_2_2.main.bn1.running_var"])
    out, rc = import("--num_classes", "10", prefix, dir .. "/x.h5")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("variable 'logit/fc/biases' is float32 [100]; resnet_small with " ..
                              "10 classes", 1, true), out)
  end)
end)
