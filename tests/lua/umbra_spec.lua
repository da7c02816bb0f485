-- The `umbra` module table: everything from umbra.core, the version, thread control, and
-- submodules loaded on first use (unknown names are nil, not errors).
local umbra = require "umbra"

describe("the umbra module", function()
  it("re-exports umbra.core", function()
    local core = require "umbra.core"
    assert.are.equal(core, umbra.core)
    assert.are.equal(core.zeros, umbra.zeros)
    assert.are.equal(core.Generator, umbra.Generator)
    assert.are.equal("0.1.0", umbra.version)
  end)

  it("sets and reads the number of threads", function()
    local n = umbra.get_num_threads()
    umbra.set_num_threads(1)
    assert.are.equal(1, umbra.get_num_threads())
    umbra.set_num_threads(n)
    assert.are.equal(n, umbra.get_num_threads())
    assert.has_error(function() umbra.set_num_threads(0) end)
  end)

  it("loads submodules on first use and leaves unknown names nil", function()
    local loads = 0
    package.preload["umbra.spec_probe"] = function()
      loads = loads + 1
      return {answer = 42}
    end
    assert.are.equal(42, umbra.spec_probe.answer)
    assert.are.equal(42, umbra.spec_probe.answer)
    assert.are.equal(1, loads)
    assert.is_nil(umbra.no_such_submodule)
    assert.is_nil(umbra["not a name"])
    package.preload["umbra.spec_probe"], package.loaded["umbra.spec_probe"] = nil, nil
    rawset(umbra, "spec_probe", nil)
  end)

  it("says whether a device backend is present", function()
    assert.is_true(umbra.has_device("cpu"))
    assert.is_false(umbra.has_device("no-such-device"))
  end)
end)
