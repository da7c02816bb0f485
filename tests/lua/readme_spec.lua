-- The README's "Your first training script", taken from README.md as it stands and run on a
-- small stand-in for MNIST (helpers.write_idx), so the block a new user copies keeps working;
-- and its example of a layer and a noise loss written in Lua (LeNet with ACET).
local h = dofile("tests/lua/helpers.lua")
local umbra = require "umbra"
local build = os.getenv("UMBRA_BUILD") or "build"

local function readme_block(marker)
  local f = assert(io.open("README.md"))
  local text = f:read("a")
  f:close()
  local at = assert(text:find(marker, 1, true), "README.md has no " .. marker)
  return assert(text:match("```lua\n(.-)```", at), "no ```lua block after " .. marker)
end

describe("README", function()
  it("runs its first training script as written", function()
    local code = readme_block("<!-- first-script")
    local n_lines = select(2, code:gsub("\n", ""))
    assert.is_true(n_lines <= 40, "the first script should stay short: " .. n_lines .. " lines")
    local dir = h.tmpdir("readme")
    os.execute("mkdir -p " .. dir .. "/mnist")
    local g = umbra.Generator(5)
    h.write_idx(dir .. "/mnist", "train", 300, g)
    h.write_idx(dir .. "/mnist", "t10k", 100, g)
    local f = assert(io.open(dir .. "/first.lua", "w"))
    f:write(code)
    f:close()
    local exe = build:sub(1, 1) == "/" and build .. "/umbra" or os.getenv("PWD") .. "/" .. build .. "/umbra"
    local out, rc = h.run("cd " .. dir .. " && UMBRA_DATA=" .. dir .. " " .. h.quote(exe) .. " first.lua")
    local saved = io.open(dir .. "/first.h5") ~= nil
    os.execute("rm -rf " .. h.quote(dir))
    assert.equal(0, rc, out)
    assert.is_true(saved, "first.h5 was not written")
    local acc, mmc_test, mmc_noise = out:match("test accuracy ([%d.]+)  MMC test ([%d.]+)  MMC noise ([%d.]+)")
    assert.is_truthy(acc, out)
    -- three steps on stripes that tell the classes apart: better than chance (0.1)
    assert.is_true(tonumber(acc) > 0.2, out)
    for _, v in ipairs{mmc_test, mmc_noise} do assert.is_true(tonumber(v) >= 0.1 and tonumber(v) <= 1, out) end
  end)

  it("runs its example of a layer and a noise loss written in Lua", function()
    local code = readme_block("<!-- example: lua-layers")
    local dir = h.tmpdir("readme")
    local f = assert(io.open(dir .. "/lua_layers.lua", "w"))
    f:write(code)
    f:close()
    local out, rc = h.run(h.quote(build .. "/umbra") .. " " .. h.quote(dir .. "/lua_layers.lua"))
    os.execute("rm -rf " .. h.quote(dir))
    assert.equal(0, rc, out)
    assert.matches("\n3\t%d", "\n" .. out)   -- three ACET steps printed their loss
  end)
end)
