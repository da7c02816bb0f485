-- Collectives on GPUs (dist.device_collectives, core/dist/dist_device.c, nccl_load.c). Without
-- a GPU the NCCL path runs on a stand-in library (build/tests/libfake_nccl.so: NCCL's entry
-- points reducing host memory through MPI, routed to by UMBRA_NCCL_ON_HOST=1): the set-up,
-- the agreement between ranks, the one flat call for the gradients and every error a user
-- with GPUs can meet. Training on two GPUs through the real NCCL needs two devices and is
-- pending without them.
local h = dofile("tests/lua/helpers.lua")
local umbra = require "umbra"
local build = os.getenv("UMBRA_BUILD") or "build"
local fake = build .. "/tests/libfake_nccl.so"

local function run2(env, script)
  return h.run(env .. " " .. h.mpirun(2) .. " " .. script)
end
local on_fake = "COLLECTIVES_DEVICE=1 UMBRA_NCCL_ON_HOST=1 UMBRA_NCCL_LIB=" .. fake

describe("collectives on GPUs", function()
  local dir = h.tmpdir("dist_nccl")
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("fall back to MPI on host copies without NCCL, and say so", function()
    local out, rc = run2("COLLECTIVES_DEVICE=1 UMBRA_NCCL_LIB=/no/such/libnccl.so.2", "tests/lua/dist/collectives.lua")
    assert.are.equal(0, rc, out)
    assert.matches("rank 0: MPI on host copies (no NCCL: /no/such/libnccl.so.2: cannot open", out, 1, true)
    assert.matches("rank 1 of 2 ok", out, 1, true)
    out, rc = run2("COLLECTIVES_DEVICE=1 UMBRA_NCCL=off", "tests/lua/dist/collectives.lua")
    assert.are.equal(0, rc, out)
    assert.matches("rank 1: MPI on host copies (no NCCL: UMBRA_NCCL=off)", out, 1, true)
  end)

  it("run every collective through NCCL, the gradients in one flat call", function()
    local out, rc = run2(on_fake .. " FAKE_NCCL_LOG=1", "tests/lua/dist/collectives.lua")
    assert.are.equal(0, rc, out)
    assert.matches("rank 0: NCCL 2.28.9 on the device", out, 1, true)
    assert.matches("rank 0 of 2 ok", out, 1, true)
    assert.matches("rank 1 of 2 ok", out, 1, true)
    -- the MLP 4-3-2's gradients: 12 + 3 + 6 + 2 values, one call
    assert.matches("fake ncclAllReduce rank 1: 23 values", out, 1, true)
    assert.matches("fake ncclBroadcast rank 0: 12 values", out, 1, true)
  end)

  it("train as the host path does (LeNet, 2 ranks, 5 steps: the same bits)", function()
    local script = " tests/lua/dist/equivalence.lua plain 5 "
    local out, rc = run2("EQ_LR=0.002", script .. dir .. "/host.h5")
    assert.are.equal(0, rc, out)
    out, rc = run2("EQ_LR=0.002 EQ_DEVICE_COLLECTIVES=1 " .. on_fake, script .. dir .. "/nccl.h5")
    assert.are.equal(0, rc, out)
    assert.matches("collectives: NCCL 2.28.9 on the device", out, 1, true)
    local checkpoint = require "umbra.checkpoint"
    local a, b = assert(checkpoint.read(dir .. "/host.h5")), assert(checkpoint.read(dir .. "/nccl.h5"))
    for _, name in ipairs(a.names) do assert.are.equal(0, (a.tensors[name] - b.tensors[name]):abs():max(), name) end
  end)

  it("stop every rank with the reason when NCCL is there but unusable", function()
    local cases = {
      {"FAKE_NCCL_VERSION=2303", "is NCCL 2.3.3, umbra needs NCCL 2.x from 2.4 (UMBRA_NCCL=off reduces through MPI"},
      {"FAKE_NCCL_INIT_FAIL=1", "ncclCommInitRank failed: unhandled cuda error (run with NCCL_DEBUG=INFO for details) "
                                .. "(error 1): Cuda failure 'CUDA driver version is insufficient"},
      {"UMBRA_NCCL_LIB=/etc/hostname", "NCCL on rank 0: /etc/hostname: "},
      {"UMBRA_NCCL_LIB=/no/such/libnccl.so.2 UMBRA_NCCL=require", "NCCL on rank 1: /no/such/libnccl.so.2: cannot open"},
    }
    for _, c in ipairs(cases) do
      local out, rc = run2(on_fake .. " " .. c[1], "tests/lua/dist/collectives.lua")
      assert.are_not.equal(0, rc, out)
      assert.matches(c[2], out, 1, true)
      assert.matches("exits with status 1; stopping all ranks", out, 1, true)
    end
  end)

  -- the real library where it is installed: without a GPU its communicator cannot be made,
  -- which must be an umbra error naming the call, never a crash
  it("answer with a line or a clear error with the NCCL installed here (or none)", function()
    local out, rc = run2("COLLECTIVES_DEVICE=1", "tests/lua/dist/collectives.lua")
    if rc == 0 then
      assert.matches("rank 0: (MPI on host copies %(no NCCL: .*%)", out)
    else
      assert.matches("dist.device_collectives: ncclCommInitRank failed: ", out, 1, true)
    end
  end)
end)

describe("2 ranks on 2 GPUs through NCCL", function()
  local n = umbra.cuda.is_available() and umbra.cuda.device_count() or 0
  if n < 2 then
    pending(string.format("needs 2 CUDA devices, found %d (%s)", n,
                          n == 0 and tostring(umbra.cuda.why_unavailable()) or "one rank per GPU"))
    return
  end
  local dir = h.tmpdir("dist_nccl_gpu")
  teardown(function() os.execute("rm -rf " .. dir) end)
  it("= 1 rank on one GPU (LeNet, plain SGD, 20 steps) within 1e-5", function()
    local script = " tests/lua/dist/equivalence.lua plain 20 "
    local out, rc = h.run("EQ_LR=0.002 EQ_DEVICE=cuda " .. build .. "/umbra" .. script .. dir .. "/one.h5")
    assert.are.equal(0, rc, out)
    out, rc = run2("EQ_LR=0.002 EQ_DEVICE=cuda", script .. dir .. "/two.h5")
    assert.are.equal(0, rc, out)
    assert.matches("collectives: NCCL", out, 1, true)
    local checkpoint = require "umbra.checkpoint"
    local a, b = assert(checkpoint.read(dir .. "/one.h5")), assert(checkpoint.read(dir .. "/two.h5"))
    local d2, n2 = 0, 0
    for _, name in ipairs(a.names) do
      local d = a.tensors[name] - b.tensors[name]
      d2, n2 = d2 + (d * d):sum(), n2 + (a.tensors[name] * a.tensors[name]):sum()
    end
    assert.is_true(math.sqrt(d2 / n2) < 1e-5, tostring(math.sqrt(d2 / n2)))
  end)
end)
