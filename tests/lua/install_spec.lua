-- make install into a temporary PREFIX: the installed umbra finds models/ and recipes/
-- (PREFIX/share/umbra) from any folder, so `umbra train ...` and `umbra recipes/train.lua`
-- work outside the checkout; a plain lua5.4 finds the library with the LUA_PATH and
-- LUA_CPATH the README gives for a custom PREFIX.
local h = dofile("tests/lua/helpers.lua")
local umbra = require "umbra"
local build = os.getenv("UMBRA_BUILD") or "build"

describe("make install", function()
  local tmp = h.tmpdir("install")
  local prefix = tmp .. "/prefix"
  teardown(function() os.execute("rm -rf " .. h.quote(tmp)) end)

  it("installs models and recipes that the installed umbra finds from anywhere", function()
    -- CUDA=0: the CUDA library is not what this checks (and a sanitizer build has none)
    local out, rc = h.run("make -s install CUDA=0 BUILD=" .. h.quote(build) .. " PREFIX=" .. h.quote(prefix))
    assert.equal(0, rc, out)
    for _, f in ipairs{"bin/umbra", "share/umbra/models/lenet.lua", "share/umbra/recipes/train.lua",
                       "share/umbra/recipes/paper/train-all.sh", "share/lua/5.4/umbra/init.lua",
                       "lib/lua/5.4/umbra/core.so"} do
      assert.is_truthy(io.open(prefix .. "/" .. f), f)
    end
    local exe = prefix .. "/bin/umbra"
    -- a data folder away from the checkout, with a small stand-in for MNIST
    os.execute("mkdir -p " .. tmp .. "/work/data/mnist")
    local g = umbra.Generator(2)
    h.write_idx(tmp .. "/work/data/mnist", "train", 64, g)
    h.write_idx(tmp .. "/work/data/mnist", "t10k", 32, g)
    out, rc = h.run("cd " .. tmp .. "/work && " .. h.quote(exe) .. " train --dataset mnist --data_dir data "
                    .. "--batch_size 32 --max_steps 1 --n_epochs 1 --threads 1 --exp_name installed")
    assert.equal(0, rc, out)
    assert.matches("Worker done: runs/installed/", out, 1, true)
    out, rc = h.run("cd " .. tmp .. " && " .. h.quote(exe) .. " recipes/evaluate.lua --help")
    assert.equal(0, rc, out)
    assert.matches("Usage: evaluate", out, 1, true)
    out, rc = h.run("cd /tmp && " .. h.quote(exe) .. " no_such_recipe")
    assert.equal(1, rc, out)
    assert.matches("cannot open no_such_recipe", out, 1, true)
  end)

  it("is found by a plain lua5.4 through LUA_PATH and LUA_CPATH", function()
    if os.getenv("ASAN") == "1" then
      pending("a sanitizer build's umbra.core loads only into a program linked with the sanitizer")
      return
    end
    local env = string.format("LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;%s/share/umbra/?.lua;;' "
                              .. "LUA_CPATH='%s/lib/lua/5.4/?.so;;'", prefix, prefix, prefix, prefix)
    local out, rc = h.run("cd /tmp && " .. env .. [[ lua5.4 -e 'local u = require "umbra"; ]]
                          .. [[print(u.ones(3):sum(), type(require("models.lenet")))']])
    assert.equal(0, rc, out)
    assert.equal("3.0\tfunction\n", out)
  end)
end)
