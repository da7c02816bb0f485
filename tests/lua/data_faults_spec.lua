-- A data file that exists but cannot be read is reported with the real reason, not as
-- "missing ... get it with scripts/fetch-data" (issue "trust under faults", item 10).
local h = dofile("tests/lua/helpers.lua")
local data = require "umbra.data"

describe("umbra.data on unreadable files", function()
  it("reports the real errno", function()
    local dir = h.tmpdir("dataerr")
    os.execute("mkdir -p " .. dir .. "/mnist && ln -s loop " .. dir .. "/mnist/loop && ln -s loop "
               .. dir .. "/mnist/train-images-idx3-ubyte")
    local ds, err = data.load("mnist", {split = "train", dir = dir})
    os.execute("rm -rf " .. h.quote(dir))
    assert.is_nil(ds)
    assert.matches("cannot read " .. dir .. "/mnist/train-images-idx3-ubyte: Too many levels of symbolic links", err, 1,
                   true)
    assert.is_nil(err:find("fetch-data", 1, true))
  end)
end)
