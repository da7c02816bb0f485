-- umbra.dist: one rank without a launcher (a plain build/umbra), the collectives under
-- `mpirun -np 2`, and a failing rank stopping the job with a message naming it.
local umbra = require "umbra"
local dist = require "umbra.dist"
local h = dofile("tests/lua/helpers.lua")

describe("umbra.dist", function()
  it("is one rank without mpirun, and the collectives leave tensors as they are", function()
    local rank, size = dist.init()
    assert.are.equal(0, rank)
    assert.are.equal(1, size)
    assert.is_false(dist.uses_mpi())
    local t = umbra.tensor({1, 2, 3})
    dist.allreduce(t, "mean")
    assert.are.same({1, 2, 3}, {t[1], t[2], t[3]})
    assert.are.equal(3, dist.allgather(t):size(1))
    assert.has_error(function() dist.allreduce(t, "min") end)
    assert.has_error(function() dist.allreduce(umbra.zeros(4, 4):t(), "sum") end)
    assert.has_error(function() dist.broadcast(t, 1) end)
  end)

  it("splits n items into blocks in rank order", function()
    local firsts, counts = {}, {}
    for r = 0, 2 do firsts[r + 1], counts[r + 1] = dist.split(10, r, 3) end
    assert.are.same({1, 5, 8}, firsts)
    assert.are.same({4, 3, 3}, counts)
  end)

  it("reduces, broadcasts and gathers across 2 ranks", function()
    local out, rc = h.run(h.mpirun(2) .. " tests/lua/dist/collectives.lua")
    assert.are.equal(0, rc, out)
    assert.matches("rank 0 of 2 ok", out, 1, true)
    assert.matches("rank 1 of 2 ok", out, 1, true)
  end)

  it("stops every rank when one fails, naming it", function()
    local script = h.tmpname("dist")
    local f = assert(io.open(script, "w"))
    f:write([[local d = require "umbra.dist"; local r = d.init()
      if r == 1 then error("failing on purpose") end
      d.barrier(); os.execute("sleep 20"); print("rank 0 not stopped")]])
    f:close()
    local t0 = os.time()
    local out, rc = h.run(h.mpirun(2) .. " " .. script)
    os.remove(script)
    assert.are_not.equal(0, rc, out)
    assert.is_true(os.time() - t0 < 15, "took " .. (os.time() - t0) .. " s")
    assert.matches("rank 1 of 2 exits with status 1", out, 1, true)
    assert.not_matches("not stopped", out, 1, true)
  end)
end)
