-- What the one lent GPU run depends on, checked on a machine without a device (issue 18):
-- `make DEPS_STATUS=0` runs no dependency script; UMBRA_REQUIRE_CUDA=1 turns a missing
-- device into a failure that names its reason; the CUDA library is refused when its ABI
-- version differs; synchronize/memory/empty_cache load nothing in a CPU run; and
-- scripts/gpu-check --dry-run walks every phase.
local h = dofile("tests/lua/helpers.lua")
local build = os.getenv("UMBRA_BUILD") or "build"
local umbra = require "umbra"

local exe = build .. "/umbra"

-- Why this machine has no "cuda" (what these checks are about).
local function umbra_why() return assert(umbra.cuda.why_unavailable()) end

describe("make DEPS_STATUS=0", function()
  -- A copy of the Makefile beside a fake scripts/ensure-deps that records each call.
  local function make_calls(args)
    local dir = h.tmpdir("deps")
    os.execute("mkdir -p " .. dir .. "/scripts && cp Makefile " .. dir .. "/")
    local fake = assert(io.open(dir .. "/scripts/ensure-deps", "w"))
    fake:write("#!/bin/sh\necho called >> \"$(dirname \"$0\")/../calls\"\nexit 0\n")
    fake:close()
    os.execute("chmod +x " .. dir .. "/scripts/ensure-deps")
    local out, rc = h.run("cd " .. dir .. " && make -n CUDA=0 --eval='probe: ; @:' " .. args .. " probe")
    local f = io.open(dir .. "/calls")
    local calls = f and select(2, f:read("a"):gsub("called", "")) or 0
    if f then f:close() end
    os.execute("rm -rf " .. dir)
    return calls, out, rc
  end

  it("runs scripts/ensure-deps without the override", function()
    local calls, out, rc = make_calls("")
    assert.are.equal(0, rc, out)
    assert.are.equal(1, calls, out)
  end)

  it("runs no dependency script with DEPS_STATUS=0 (the GPU machine is offline)", function()
    local calls, out, rc = make_calls("DEPS_STATUS=0")
    assert.are.equal(0, rc, out)
    assert.are.equal(0, calls, out)
  end)

  it("still stops on DEPS_STATUS=1", function()
    local _, out, rc = make_calls("DEPS_STATUS=1")
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("missing dependencies", 1, true), out)
  end)
end)

describe("UMBRA_REQUIRE_CUDA=1 without a device", function()
  if umbra.cuda.is_available() then
    pending("this machine has a CUDA device")
    return
  end
  local why = umbra_why()

  it("makes the C parity suite fail, naming the reason", function()
    local built = io.open(build .. "/tests/test_cuda_parity")
    if not built then
      pending(build .. "/tests/test_cuda_parity is not built (make test builds it)")
      return
    end
    built:close()
    local out, rc = h.run("UMBRA_REQUIRE_CUDA=1 " .. build .. "/tests/test_cuda_parity")
    assert.are_not.equal(0, rc, out)
    assert.truthy(out:find("UMBRA_REQUIRE_CUDA=1, but there is no cuda device: " .. why, 1, true), out)
    out, rc = h.run(build .. "/tests/test_cuda_parity")   -- without it: a skip with the reason
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("SKIP cuda: no CUDA device (" .. why .. ")", 1, true), out)
  end)

  it("makes the Lua GPU spec fail, naming the reason", function()
    local cmd = build .. "/umbra /usr/bin/busted -o plainTerminal tests/lua/cuda_spec.lua"
    local out, rc = h.run("UMBRA_REQUIRE_CUDA=1 UMBRA_BUILD=" .. build .. " " .. cmd)
    assert.are_not.equal(0, rc, out)
    assert.truthy(out:find("UMBRA_REQUIRE_CUDA=1, but no CUDA device (" .. why .. ")", 1, true), out)
    out, rc = h.run("UMBRA_BUILD=" .. build .. " " .. cmd)
    assert.are.equal(0, rc, out)
  end)
end)

describe("the CUDA library", function()
  -- A fresh process: this one may have loaded the library already.
  it("is not loaded by synchronize(), memory() or empty_cache() in a CPU run", function()
    local probe = [[
         local umbra = require "umbra"
         umbra.cuda.synchronize()
         local m = umbra.cuda.memory()
         umbra.cuda.empty_cache()
         local f = assert(io.open("/proc/self/maps"))
         local maps = f:read("a")
         f:close()
         io.write(tostring(maps:find("libumbra_cuda.so", 1, true) ~= nil), " ",
                  tostring(maps:find("libcudart", 1, true) ~= nil), " ", m.in_use + m.cached + m.peak)]]
    local out, rc = h.run(exe .. " -e " .. h.quote(probe))
    assert.are.equal(0, rc, out)
    assert.are.equal("false false 0", out)
  end)

  it("is refused when its ABI version differs, saying which versions", function()
    local dir = h.tmpdir("abi")
    local src = assert(io.open(dir .. "/fake.c", "w"))
    src:write([[
         /* what an older libumbra_cuda.so would hand the loader */
         struct fake { int abi_version, struct_size; void *entries[8]; };
         static const struct fake table = {1, (int)sizeof(struct fake), {0}};
         const struct fake *um_cuda_entry(void) { return &table; }
      ]])
    src:close()
    local out, rc = h.run("cc -shared -fPIC -o " .. dir .. "/libumbra_cuda.so " .. dir .. "/fake.c")
    assert.are.equal(0, rc, out)
    out, rc = h.run("UMBRA_CUDA_LIB=" .. dir .. "/libumbra_cuda.so " .. exe ..
                    " -e 'local c = require(\"umbra\").cuda; print(c.is_available(), c.why_unavailable())'")
    os.execute("rm -rf " .. dir)
    assert.are.equal(0, rc, out)
    local expected = "false\t" .. dir .. "/libumbra_cuda.so has ABI version 1 (table of 72 bytes), "
      .. "this umbra needs version 2"
    assert.are.equal(expected, out:sub(1, #expected))
  end)
end)

describe("the CUDA sources", function()
  -- A fault is reported with the kernel named in UM_CU_LAUNCHED (core/cuda/cuda_backend.h),
  -- so that name must be the kernel launched just before it.
  it("name each launch check after the kernel it follows", function()
    local p = io.popen("ls core/cuda/*.cu")
    local checked = 0
    for file in p:lines() do
      local last, n = nil, 0
      for line in io.lines(file) do
        n = n + 1
        local k = line:match("([%w_]+)<<<") or line:match("([%w_]+)<[%w_%s%*]+><<<")
        if k then last = k end
        local named = line:match('UM_CU_LAUNCHED%("([^"]*)"%)')
        if named then
          assert.are.equal(last, named, file .. ":" .. n)
          last, checked = nil, checked + 1
        end
      end
    end
    p:close()
    assert.is_true(checked > 40, "only " .. checked .. " launch checks found")
  end)
end)

describe("scripts/gpu-check", function()
  local phases = {"machine", "prefix", "build", "test_cuda_parity", "test_cuda_parity_edges", "lua",
                  "bench-umbra", "bench-torch", "tests"}

  local function read(path)
    local f = assert(io.open(path))
    local s = f:read("a")
    f:close()
    return s
  end

  it("walks every phase in a dry run and writes the results skeleton", function()
    local dir = h.tmpdir("gpucheck")
    local out, rc = h.run("scripts/gpu-check --dry-run " .. dir)
    assert.are.equal(0, rc, out)
    local md = read(dir .. "/results.md")
    for _, p in ipairs(phases) do
      assert.truthy(md:find("| " .. p .. " | no device | no device | no device |", 1, true), p .. "\n" .. md)
      assert.truthy(out:find("dry run: " .. p .. " (timeout ", 1, true), p .. "\n" .. out)
    end
    for _, b in ipairs{"lenet_train", "resnet_small_train", "lenet_acet", "resnet_small_acet"} do
      assert.truthy(md:find("| " .. b .. " | no device | no device | no device |", 1, true), b .. "\n" .. md)
    end
    -- the build runs offline: no dependency script, and the parity suites built with it
    assert.truthy(out:find("DEPS_STATUS=0", 1, true), out)
    assert.truthy(out:find("all build-gpu/tests/test_cuda_parity build-gpu/tests/test_cuda_parity_edges", 1, true), out)
    os.execute("rm -rf " .. dir)
  end)

  it("records failures with what failed, and skips what the time left does not allow", function()
    local dir, debs = h.tmpdir("gpucheck"), h.tmpdir("gpudebs")   -- no packages carried
    local out, rc = h.run("UMBRA_GPU_BUDGET=40 UMBRA_GPU_PREFIX=" .. dir .. "/prefix scripts/gpu-check "
                          .. dir .. " " .. debs)
    assert.are.equal(0, rc, out)
    local md = read(dir .. "/results.md")
    assert.truthy(md:find("| prefix | FAILED, exit 1 (prefix.log): gpu-prefix: no .deb files in " .. debs, 1, true), md)
    assert.truthy(md:find("| build | skipped: %d+ s left, needs 60 | %- | 0 |"), md)
    assert.truthy(md:find("| tests | skipped: %d+ s left, needs 60 | %- | 0 |"), md)
    for _, p in ipairs(phases) do assert.truthy(md:find("| " .. p .. " | ", 1, true), p .. "\n" .. md) end
    os.execute("rm -rf " .. dir .. " " .. debs)
  end)

  it("says which phases timed out", function()
    local dir, debs, bin = h.tmpdir("gpucheck"), h.tmpdir("gpudebs"), h.tmpdir("gpubin")
    local f = assert(io.open(bin .. "/make", "w"))   -- a build that hangs
    f:write("#!/bin/sh\nexec sleep 30\n")
    f:close()
    os.execute("chmod +x " .. bin .. "/make")
    local out, rc = h.run("PATH=" .. bin .. ":$PATH UMBRA_GPU_MAX_PHASE=1 UMBRA_GPU_BUDGET=200 UMBRA_GPU_PREFIX="
                          .. dir .. "/prefix scripts/gpu-check " .. dir .. " " .. debs)
    assert.are.equal(0, rc, out)
    local md = read(dir .. "/results.md")
    assert.truthy(md:find("| build | TIMED OUT after 1 s (build.log) | 124 | ", 1, true), md)
    assert.truthy(md:find("| tests | TIMED OUT after 1 s (tests.log) | 124 | ", 1, true), md)
    os.execute("rm -rf " .. dir .. " " .. debs .. " " .. bin)
  end)
end)
