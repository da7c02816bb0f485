-- umbra.Generator: one seed gives one stream, a saved state replays it exactly, clones
-- are independent, and scalars, permutations and random tensors respect their ranges.
local umbra = require "umbra"

local function draws(g, n)
  local out = {}
  for i = 1, n do out[i] = g:uniform() end
  return out
end

describe("Generator", function()
  it("gives the same stream for the same seed and another for another seed", function()
    assert.are.same(draws(umbra.Generator(42), 20), draws(umbra.Generator(42), 20))
    assert.are.not_same(draws(umbra.Generator(42), 20), draws(umbra.Generator(43), 20))
    local a, b = umbra.Generator(7), umbra.Generator(7)
    for _ = 1, 10 do
      assert.are.equal(a:normal(), b:normal())
      assert.are.equal(a:random(1000), b:random(1000))
    end
  end)

  it("saves and restores its state exactly", function()
    local g = umbra.Generator(123)
    draws(g, 5)
    local s = g:state()
    assert.are.same({seed = 123, counter = 5}, s)
    local first = {g:uniform(), g:normal(), g:random(10), umbra.rand({4}, g):to_table()}
    assert.is_true(rawequal(g, g:set_state(s)))
    local again = {g:uniform(), g:normal(), g:random(10), umbra.rand({4}, g):to_table()}
    assert.are.same(first, again)
  end)

  it("keeps 64-bit seeds and counters as exact integer bit patterns", function()
    local g = umbra.Generator(-1)
    assert.are.equal(-1, g:state().seed)
    g:set_state{seed = math.mininteger, counter = -2}
    local s = g:state()
    assert.are.equal(math.mininteger, s.seed)
    assert.are.equal(-2, s.counter)
    g:uniform()
    assert.are.equal(-1, g:state().counter)
    assert.are.equal("umbra.Generator(seed=18446744073709551615, counter=0)",
                     tostring(umbra.Generator(-1)))
    assert.has_error(function() g:set_state{seed = 1} end,
                     "set_state: field 'counter' must be an integer")
  end)

  it("clones into an independent generator at the same point", function()
    local g = umbra.Generator(9)
    g:uniform()
    local c = g:clone()
    local from_g = draws(g, 5)
    assert.are.same(from_g, draws(c, 5))
    g:uniform()
    assert.are.not_same(g:state(), c:state())
  end)

  it("draws scalars in their ranges", function()
    local g = umbra.Generator(1)
    local sum, seen = 0, {}
    for _ = 1, 2000 do
      local u = g:uniform()
      assert.is_true(u >= 0 and u < 1)
      sum = sum + u
      local v = g:uniform(-3, -2)
      assert.is_true(v >= -3 and v < -2)
      local r = g:random(6)
      assert.is_true(math.type(r) == "integer" and r >= 1 and r <= 6)
      seen[r] = true
      local m = g:random(-2, 2)
      assert.is_true(m >= -2 and m <= 2)
    end
    assert.are.same({true, true, true, true, true, true}, seen)
    assert.is_true(math.abs(sum / 2000 - 0.5) < 0.03)
    local n, sq = 0, 0
    for _ = 1, 4000 do
      local x = g:normal(10, 2)
      n, sq = n + x, sq + (x - 10) ^ 2
    end
    assert.is_true(math.abs(n / 4000 - 10) < 0.1)
    assert.is_true(math.abs(math.sqrt(sq / 4000) - 2) < 0.1)
    assert.has_error(function() g:random(3, 1) end, "random: empty interval [3, 1]")
  end)

  it("permutes 1..n", function()
    local p = umbra.Generator(5):permutation(10)
    assert.are.equal("int64", p:dtype())
    local values = p:to_table()
    table.sort(values)
    assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, values)
    assert.are.same(p:to_table(), umbra.Generator(5):permutation(10):to_table())
    assert.are.same({}, umbra.Generator(5):permutation(0):to_table())
  end)

  it("makes random tensors that advance the stream", function()
    local g = umbra.Generator(2)
    local a, b = umbra.rand({3, 3}, g), umbra.rand({3, 3}, g)
    assert.are.not_same(a:to_table(), b:to_table())
    local h = umbra.Generator(2)
    assert.are.same(a:to_table(), umbra.rand(3, 3, h):to_table())
    assert.are.same(b:to_table(), umbra.rand(3, 3, h):to_table())
    local n = umbra.randn({10000}, g)
    assert.is_true(math.abs(n:mean()) < 0.05)
    assert.is_true(math.abs((n * n):mean() - 1) < 0.05)
  end)

  it("is recognised by is_generator and type-checked by methods", function()
    assert.is_true(umbra.is_generator(umbra.Generator(0)))
    assert.is_false(umbra.is_generator(umbra.zeros(1)))
    assert.has_error(function() umbra.Generator("x") end)
    assert.has_error(function() umbra.Generator(1).uniform(umbra.zeros(1)) end)
  end)
end)
