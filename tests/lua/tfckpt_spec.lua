-- TensorFlow checkpoints from Lua: umbra.core.tf_checkpoint_open on a small checkpoint
-- written here byte by byte (LevelDB table + BundleEntryProto), its errors on damaged
-- copies, and scripts/import-tf-checkpoint --list. With UMBRA_PAPER_MODELS set, also the
-- authors' released models.
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

-- Variables: a/bias float32 [3], a/kernel float32 [1, 1, 2, 3], global_step int32 scalar.
local function make_checkpoint(dir)
   local bias = string.pack("<fff", 0.5, -1.5, 2.25)
   local kernel = string.pack("<ffffff", 1, 2, 3, 4, 5, 6)
   local step = string.pack("<i4", 1234)
   write(dir .. "/m-1.data-00000-of-00001", bias .. kernel .. step)
   local data, dsize = block{
      {"", field(1, 0, 1)},
      {"a/bias", entry(1, {3}, 0, bias)},
      {"a/kernel", entry(1, {1, 1, 2, 3}, 12, kernel)},
      {"global_step", entry(3, {}, 36, step)}}
   local meta, msize = block{}
   local index, isize = block{{"t", varint(0) .. varint(dsize)}}
   local footer = varint(#data) .. varint(msize) .. varint(#data + #meta) .. varint(isize)
   footer = footer .. string.rep("\0", 40 - #footer) .. string.pack("<I8", 0xdb4775248b80fb57)
   write(dir .. "/m-1.index", data .. meta .. index .. footer)
   return dir .. "/m-1", #data
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

local tmpdirs = {}
local function tmpdir()
   local name = os.tmpname()
   os.remove(name)
   assert(os.execute("mkdir " .. quote(name)))
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
      local out, rc = run("scripts/import-tf-checkpoint --list " .. quote(prefix))
      assert.are.equal(0, rc, out)
      assert.is_truthy(out:find("a/bias       float32  [3]\n", 1, true), out)
      assert.is_truthy(out:find("a/kernel     float32  [1, 1, 2, 3]\n", 1, true), out)
      assert.is_truthy(out:find("global_step  int32    []\n", 1, true), out)
      assert.is_truthy(out:find("3 variables; 9 trainable parameters", 1, true), out)
   end)

   it("fails with the reader's message and status 1", function()
      local out, rc = run("scripts/import-tf-checkpoint --list /nonexistent/x")
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("import-tf-checkpoint: cannot open TensorFlow checkpoint index " ..
                                "'/nonexistent/x.index'", 1, true), out)
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
      local out, rc = run("scripts/import-tf-checkpoint --list " .. quote(paper_prefix("cifar100_ceda")))
      assert.are.equal(0, rc, out)
      assert.is_truthy(out:find("block_init/conv/weights%s+float32  %[3, 3, 3, 16%]\n"), out)
      assert.is_truthy(out:find("logit/fc/weights%s+float32  %[64, 100%]\n"), out)
      assert.is_truthy(out:find("Variable%s+int32    %[%]\n"), out)
      assert.is_truthy(out:find("157 variables; 275,572 trainable parameters", 1, true), out)
      out = run("scripts/import-tf-checkpoint --list " .. quote(paper_prefix("svhn_acet")))
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
end)
