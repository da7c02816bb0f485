-- Ctrl-C during a long C loop (issue "trust under faults", item 7): PGD with a billion
-- steps stops between iterations when the executable gets SIGINT, instead of running on
-- until the loop ends.
local h = dofile("tests/lua/helpers.lua")
local build = os.getenv("UMBRA_BUILD") or "build"

describe("an interrupt", function()
  it("stops PGD between iterations", function()
    local script = h.tmpname("interrupt")
    local f = assert(io.open(script, "w"))
    f:write([[
local umbra = require "umbra"
local g = umbra.Generator(1)
local model = require("models.mlp"){sizes = {64, 32, 10}, generator = g}
local z = umbra.rand({8, 64}, g)
umbra.attack.pgd(model, z, {eps = 0.3, step = 0.01, steps = 1000000000, objective = "max_conf", generator = g})
print("finished")
]])
    f:close()
    local t0 = os.time()
    -- SIGINT after 2 s; SIGKILL 20 s later if the loop never looks
    local out = h.run(string.format("timeout -s INT -k 20 2 %s/umbra %s", build, h.quote(script)))
    os.remove(script)
    assert.is_true(os.time() - t0 < 30, out)
    assert.matches("interrupted", out, 1, true)
    assert.is_nil(out:find("finished", 1, true))
  end)
end)
