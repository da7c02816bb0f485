-- Habits a PyTorch user brings: float labels, accuracy from int64 comparisons, calling a
-- model, children and parameters as fields, misspelt methods, a step without backward, a
-- backward after a failed forward, MaxConf:backward without a target.
local umbra = require "umbra"
local nn, optim = umbra.nn, umbra.optim

local function net(g)
  return nn.Sequential{{"fc1", nn.Linear(4, 5, {generator = g})}, nn.ReLU(), nn.Flatten(),
                {"fc2", nn.Linear(5, 3, {generator = g})}}
end

-- Capture what f writes to io.stderr (replaced for the call, then restored).
-- luacheck: push ignore 122
local function stderr_of(f)
  local saved, text = io.stderr, {}
  io.stderr = {write = function(_, ...) for _, s in ipairs{...} do text[#text + 1] = s end end}
  local ok, err = pcall(f)
  io.stderr = saved
  assert(ok, err)
  return table.concat(text)
end
-- luacheck: pop

describe("PyTorch habits", function()
  it("CrossEntropy names float labels as the mistake", function()
    local z = umbra.zeros({2, 3})
    local ce = nn.CrossEntropy()
    local ok, err = pcall(ce.forward, ce, z, umbra.tensor({1, 2}))
    assert.is_false(ok)
    assert.matches("labels must be int64 class indices 1..K (got float32)", err, 1, true)
    ok, err = pcall(ce.backward, ce, z, umbra.tensor({1, 2}))
    assert.is_false(ok)
    assert.matches("(got float32)", err, 1, true)
    assert.near(math.log(3), ce:forward(z, umbra.tensor({1, 2}, "int64")), 1e-6)
  end)

  it("compares and sums int64 tensors exactly, so accuracy is one line", function()
    local labels = umbra.tensor({1, 2, 3, 2}, "int64")
    local logits = umbra.tensor({{5, 0, 0}, {0, 5, 0}, {5, 0, 0}, {0, 5, 0}})
    local pred = logits:argmax(2)
    assert.equal(3, pred:eq(labels):sum())
    assert.equal(0.75, pred:eq(labels):mean())
    assert.same({0, 0, 1, 0}, pred:ne(labels):to_table())
    assert.same({0, 1, 1, 1}, labels:gt(1):to_table())
    assert.same({1, 0, 0, 0}, labels:lt(1.5):to_table())
    assert.same({0, 1, 0, 1}, labels:eq(2):to_table())
    assert.equal(8, labels:sum())
    assert.equal(math.type(labels:sum()), "integer")
    assert.equal(3, labels:max())
    assert.equal(1, labels:min())
    local big = umbra.tensor({{1, 2}, {3, 4}}, "int64")
    assert.same({4, 6}, big:sum(1):to_table())
    assert.same({{3}, {7}}, big:sum(2, true):to_table())
    assert.same({{1, 0}, {0, 1}}, big:eq(umbra.tensor({1, 4}, "int64")):to_table())
    -- exact beyond float32's 2^24
    local huge = umbra.tensor({16777217, 16777216}, "int64")
    assert.same({1, 0}, huge:eq(16777217):to_table())
    local ok, err = pcall(labels.add, labels, labels)
    assert.is_false(ok)
    assert.matches("add: expected a float32 tensor, got int64", err, 1, true)
  end)

  it("calls a model, reaches children by name or index and parameters as fields", function()
    local g = umbra.Generator(3)
    local m = net(g)
    local x = umbra.rand({2, 4}, g)
    assert.same(m:forward(x):to_table(), m(x):to_table())
    assert.equal("Linear", m[1]:type())
    assert.same(m[1].weight:to_table(), m.fc1.weight:to_table())
    assert.same(m:parameters()[1]:to_table(), m.fc1.weight:to_table())
    assert.same(m:named_parameters()["fc2.bias"]:to_table(), m.fc2.bias:to_table())
    m.fc2.bias:fill_(0.5)   -- the field is the parameter itself, not a copy
    assert.same({0.5, 0.5, 0.5}, m:named_parameters()["fc2.bias"]:to_table())
    assert.same({5, 4}, m.fc1.weight:size())
  end)

  it("suggests the method meant for a misspelt one", function()
    local m = net(umbra.Generator(1))
    local ok, err = pcall(function() return m:forwrad(umbra.zeros({1, 4})) end)
    assert.is_false(ok)
    assert.matches("no method, child or parameter 'forwrad' on umbra.Module (Sequential) (did you mean 'forward'?)",
              err, 1, true)
    ok, err = pcall(function() return m.fc3 end)
    assert.is_false(ok)
    assert.matches("did you mean 'fc", err, 1, true)
    assert.is_nil(m.zzzzzzzzzz)   -- far from every name: nil, so code may probe
  end)

  it("warns once when opt:step() follows no backward", function()
    local g = umbra.Generator(2)
    local m = net(g)
    local opt = optim.SGD(m:parameters(), {lr = 0.1})
    local x = umbra.rand({2, 4}, g)
    local function good_step()
      m:zero_grad()
      local y = m(x)
      m:backward(x, nn.CrossEntropy():backward(y, umbra.tensor({1, 2}, "int64")))
      opt:step()
    end
    assert.equal("", stderr_of(good_step))
    assert.equal("", stderr_of(good_step))
    local warned = stderr_of(function() opt:step() end)
    assert.matches("opt:step() with no model:backward() since the last step", warned, 1, true)
    assert.equal("", stderr_of(function() opt:step() end))   -- once
    assert.equal("", stderr_of(good_step))
  end)

  it("says a backward follows a failed forward, and recovers with the next forward", function()
    local g = umbra.Generator(4)
    local m = net(g)
    local x = umbra.rand({2, 4}, g)
    m:forward(x)
    assert.is_false(pcall(m.forward, m, umbra.rand({3, 4, 1}, g)))
    local ok, err = pcall(m.backward, m, x, umbra.ones({2, 3}))
    assert.is_false(ok)
    assert.matches("backward after a forward that failed", err, 1, true)
    assert.not_matches("backward before forward", err, 1, true)
    m:forward(x)
    assert.same({2, 4}, m:backward(x, umbra.ones({2, 3})):size())
    -- a refused input (not contiguous) leaves the last forward usable
    assert.is_false(pcall(m.forward, m, umbra.rand({2, 5}, g):narrow(2, 1, 4)))
    assert.same({2, 4}, m:backward(x, umbra.ones({2, 3})):size())
  end)

  it("MaxConf and UniformConf take backward(logits [, scale]) without a target", function()
    local z = umbra.tensor({{1, 2, 0}, {0, 0, 3}})
    for _, crit in ipairs{nn.MaxConf(), nn.UniformConf()} do
      local a = crit:backward(z, 2.5):to_table()
      local b = crit:backward(z, nil, 2.5):to_table()
      local one = crit:backward(z):to_table()
      assert.same(b, a)
      for i = 1, 2 do
        for j = 1, 3 do assert.near(2.5 * one[i][j], a[i][j], 1e-6) end
      end
    end
  end)
end)
