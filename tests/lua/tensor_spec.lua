-- Tensors from Lua: construction, views sharing storage, indexing (1-based), printing,
-- operators with numbers on either side, broadcasting, reductions, softmax, matmul and
-- the error messages users see. Expected values are computed by hand.
local umbra = require "umbra"

local function close(expected, got, tol)
  tol = tol or 1e-5
  if type(expected) == "table" then
    assert.are.equal(#expected, #got, "lengths differ")
    for i = 1, #expected do close(expected[i], got[i], tol) end
  else
    assert(math.abs(expected - got) <= tol,
           string.format("expected %.7g, got %.7g", expected, got))
  end
end

local function values(t) return t:to_table() end

local function error_text(f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(msg)
end

local function expect_error(text, f, ...)
  local msg = error_text(f, ...)
  assert(msg:find(text, 1, true), "error '" .. msg .. "' does not contain '" .. text .. "'")
end

describe("tensor construction", function()
  it("infers the shape of nested tables", function()
    local t = umbra.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.are.same({2, 3}, t:size())
    assert.are.equal(3, t:size(2))
    assert.are.equal(2, t:size(-2))
    assert.are.equal(2, t:dim())
    assert.are.equal(6, t:numel())
    assert.are.equal("float32", t:dtype())
    assert.are.same({{1, 2, 3}, {4, 5, 6}}, values(t))
    assert.are.same({3, 1}, t:stride())
    assert.is_true(t:is_contiguous())
    assert.are.equal("cpu", t:device())
  end)

  it("makes int64 tensors of integers", function()
    local t = umbra.tensor({7, -2, 9007199254740993}, "int64")
    assert.are.equal("int64", t:dtype())
    assert.are.same({7, -2, 9007199254740993}, values(t))
    assert.is_true(math.type(t[1]) == "integer")
    expect_error("tensor: element [2] is 1.5, not an integer (int64 tensor)",
                 umbra.tensor, {1, 1.5}, "int64")
  end)

  it("makes a tensor with no dimensions from a number", function()
    local t = umbra.tensor(2.5)
    assert.are.equal(0, t:dim())
    assert.are.equal(1, t:numel())
    assert.are.equal(2.5, t:item())
    assert.are.equal(2.5, values(t))
  end)

  it("names the position of a ragged or non-numeric entry", function()
    expect_error("tensor: ragged nested table: element [2] has 1 entries, expected 2",
                 umbra.tensor, {{1, 2}, {3}})
    expect_error("tensor: ragged nested table: element [1][2] has 3 entries, expected 2",
                 umbra.tensor, {{{1, 2}, {3, 4, 5}}})
    expect_error("tensor: element [2][1] is a string, expected a number",
                 umbra.tensor, {{1, 2}, {"x", 4}})
    expect_error("tensor: element [2] is a number, expected a table of 2 entries",
                 umbra.tensor, {{1, 2}, 3})
  end)

  it("fills zeros, ones, full and empty of any shape", function()
    assert.are.same({{0, 0, 0}, {0, 0, 0}}, values(umbra.zeros(2, 3)))
    assert.are.same({{1, 1}}, values(umbra.ones({1, 2})))
    assert.are.same({{7, 7}, {7, 7}}, values(umbra.full({2, 2}, 7)))
    assert.are.same({{-1, -1, -1}}, values(umbra.full(1, 3, -1)))
    assert.are.same({5, 5}, values(umbra.full(2, 5, "int64")))
    assert.are.equal("int64", umbra.full({2}, 5, "int64"):dtype())
    assert.are.same({4, 5}, umbra.empty(4, 5):size())
    local z = umbra.zeros(3, "int64")
    assert.are.equal("int64", z:dtype())
    assert.are.same({0, 0, 0}, values(z))
    assert.are.same({2, 0}, umbra.zeros(2, 0):size())
    assert.are.equal(0, umbra.zeros({}):dim())
  end)

  it("checks sizes and dtypes", function()
    expect_error("zeros: size 2 is -1, expected a size >= 0", umbra.zeros, 2, -1)
    expect_error("zeros: size 1 is not an integer", umbra.zeros, 2.5)
    expect_error("ones: unknown dtype 'float16'", umbra.ones, {2}, "float16")
    expect_error("at most 6 dimensions", umbra.zeros, {1, 1, 1, 1, 1, 1, 1})
  end)

  it("has a half-open arange like NumPy", function()
    assert.are.same({0, 1, 2, 3, 4}, values(umbra.arange(5)))
    assert.are.same({2, 3, 4}, values(umbra.arange(2, 5)))
    assert.are.same({1, 1.25, 1.5, 1.75}, values(umbra.arange(1, 2, 0.25)))
    assert.are.same({5, 3, 1}, values(umbra.arange(5, 0, -2)))
    assert.are.same({}, values(umbra.arange(3, 3)))
    local i = umbra.arange(3, "int64")
    assert.are.equal("int64", i:dtype())
    assert.are.same({0, 1, 2}, values(i))
    expect_error("arange: step must be nonzero", umbra.arange, 1, 2, 0)
  end)

  it("requires a generator for random tensors", function()
    expect_error("rand: a generator is required as argument 2", umbra.rand, {2, 3})
    expect_error("there is no global random state", umbra.randn, 2, 3)
    local g = umbra.Generator(5)
    local r = umbra.rand({200}, g)
    assert.is_true(r:min() >= 0 and r:max() < 1)
    assert.are.same({3, 4}, umbra.randn(3, 4, g):size())
  end)

  it("concatenates along a dimension", function()
    local a, b = umbra.tensor{{1, 2}}, umbra.tensor{{3, 4}, {5, 6}}
    assert.are.same({{1, 2}, {3, 4}, {5, 6}}, values(umbra.cat({a, b}, 1)))
    assert.are.same({{1, 2}, {3, 4}, {5, 6}}, values(umbra.cat{a, b}))
    assert.are.same({{1, 2, 1, 2}}, values(umbra.cat({a, a}, 2)))
    expect_error("cat: entry 2 of the list is string", umbra.cat, {a, "x"})
    expect_error("cat: tensor 2 has size 2x2, expected 1x2 except in dimension 2",
                 umbra.cat, {a, b}, 2)
  end)

  it("tells tensors from other values", function()
    assert.is_true(umbra.is_tensor(umbra.zeros(1)))
    assert.is_false(umbra.is_tensor({}))
    assert.is_false(umbra.is_tensor(umbra.Generator(1)))
  end)
end)

describe("views", function()
  it("share storage with their base", function()
    local t = umbra.zeros(3, 4)
    t:narrow(2, 2, 2):fill_(5)
    t:select(1, 3):fill_(1)
    t[1][1] = 9
    assert.are.same({{9, 5, 5, 0}, {0, 5, 5, 0}, {1, 1, 1, 1}}, values(t))
    local v = t:view(12)
    v[12] = -1
    assert.are.equal(-1, t[3][4])
  end)

  it("transpose, permute, unsqueeze and squeeze rearrange sizes and strides", function()
    local t = umbra.arange(6):view(2, 3)
    local tt = t:transpose(1, 2)
    assert.are.same({3, 2}, tt:size())
    assert.are.same({1, 3}, tt:stride())
    assert.is_false(tt:is_contiguous())
    assert.are.same({{0, 3}, {1, 4}, {2, 5}}, values(tt))
    assert.are.same(values(tt), values(t:t()))
    local c = tt:contiguous()
    assert.is_true(c:is_contiguous())
    assert.are.same({{0, 3}, {1, 4}, {2, 5}}, values(c))
    local p = umbra.zeros(2, 3, 4):permute(3, 1, 2)
    assert.are.same({4, 2, 3}, p:size())
    assert.are.same({4, 2, 3}, umbra.zeros(2, 3, 4):permute{3, 1, 2}:size())
    assert.are.same({2, 1, 3}, t:unsqueeze(2):size())
    assert.are.same({2, 3, 1}, t:unsqueeze(-1):size())
    assert.are.same({2, 3}, umbra.zeros(1, 2, 1, 3):squeeze():size())
    assert.are.same({2, 1, 3}, umbra.zeros(1, 2, 1, 3):squeeze(1):size())
    expect_error("permute: dimension 1 appears twice", function() return t:permute(1, 1) end)
  end)

  it("view infers one size and reshape copies when it must", function()
    local t = umbra.arange(6)
    assert.are.same({{0, 1, 2}, {3, 4, 5}}, values(t:view(-1, 3)))
    assert.are.same({{0, 1, 2}, {3, 4, 5}}, values(t:view{2, 3}))
    local tt = t:view(2, 3):transpose(1, 2)
    expect_error("view: the tensor is not contiguous", function() return tt:view(6) end)
    assert.are.same({0, 3, 1, 4, 2, 5}, values(tt:reshape(6)))
    expect_error("view: size 4x4 has 16 elements, the tensor has 6", function() return t:view(4, 4) end)
  end)

  it("clone and copy_ copy values, not storage", function()
    local t = umbra.tensor{1, 2, 3}
    local c = t:clone()
    c[1] = 10
    assert.are.equal(1, t[1])
    local d = umbra.zeros(3)
    assert.is_true(rawequal(d, d:copy_(t)))
    assert.are.same({1, 2, 3}, values(d))
  end)

  it("convert dtypes, truncating toward zero", function()
    local t = umbra.tensor{1.7, -1.7, 3}
    local l = t:long()
    assert.are.equal("int64", l:dtype())
    assert.are.same({1, -1, 3}, values(l))
    assert.are.same({1, -1, 3}, values(l:float()))
    assert.is_true(rawequal(t, t:float()))
  end)
end)

describe("indexing", function()
  local t = umbra.tensor{{1, 2, 3}, {4, 5, 6}}

  it("counts from 1 and from the end with negative indices", function()
    assert.are.equal(2, #t)
    assert.are.same({4, 5, 6}, values(t[2]))
    assert.are.equal(6, t[2][3])
    assert.are.equal(6, t[-1][-1])
    assert.are.equal(1, t[-2][1])
    assert.are.equal(4, t:select(1, -1)[1])
    assert.are.same({{2}, {5}}, values(t:narrow(2, 2, 1)))
    assert.are.same({{3}, {6}}, values(t:narrow(2, -1, 1)))
  end)

  it("raises for indices out of range", function()
    expect_error("index 3 out of range for dimension 1 of size 2", function() return t[3] end)
    expect_error("index 0 out of range for dimension 1 of size 2", function() return t[0] end)
    expect_error("index 4 out of range for dimension 1 of size 3", function() return t[1][4] end)
    expect_error("select: index 5 out of range for dimension 2 of size 3",
                 function() return t:select(2, 5) end)
    expect_error("narrow: elements 3..4 out of range for dimension 2 of size 3",
                 function() return t:narrow(2, 3, 2) end)
    expect_error("cannot index a tensor with no dimensions", function() return umbra.tensor(1)[1] end)
  end)

  it("assigns numbers and tensors through t[i] = v", function()
    local u = umbra.zeros(2, 3)
    u[1] = 7
    u[2] = umbra.tensor{1, 2, 3}
    u[2][2] = -5
    assert.are.same({{7, 7, 7}, {1, -5, 3}}, values(u))
    local l = umbra.zeros(2, "int64")
    l[2] = 42
    assert.are.same({0, 42}, values(l))
    expect_error("t[i] = v: copy: sizes differ", function() u[1] = umbra.zeros(4) end)
    expect_error("cannot set field 'foo' of a tensor", function() u.foo = 1 end)
  end)

  it("answers nil for unknown fields and exposes the method table", function()
    assert.is_nil(t.no_such_method)
    umbra.Tensor.twice = function(self) return self * 2 end
    assert.are.same({2, 4}, values(umbra.tensor{1, 2}:twice()))
    umbra.Tensor.twice = nil
  end)
end)

describe("printing", function()
  it("prints a matrix with a size line", function()
    assert.are.equal(" 1.0000  2.0000\n 3.0000  4.0000\n[umbra.Tensor float32 of size 2x2]",
                     tostring(umbra.tensor{{1, 2}, {3, 4}}))
  end)

  it("aligns negative and wider numbers", function()
    assert.are.equal(" -1.0000   2.5000\n 10.0000   0.0000\n[umbra.Tensor float32 of size 2x2]",
                     tostring(umbra.tensor{{-1, 2.5}, {10, 0}}))
    assert.are.equal("  1.0000\n 10.0000\n-20.0000\n[umbra.Tensor float32 of size 3]",
                     tostring(umbra.tensor{1, 10, -20}))
  end)

  it("prints int64 tensors as integers", function()
    assert.are.equal("  1  -2\n 30   4\n[umbra.Tensor int64 of size 2x2]",
                     tostring(umbra.tensor({{1, -2}, {30, 4}}, "int64")))
  end)

  it("uses exponents for very large or very small magnitudes", function()
    assert.are.equal(" 1.5000e+06\n-2.0000e+00\n[umbra.Tensor float32 of size 2]",
                     tostring(umbra.tensor{1.5e6, -2}))
  end)

  it("prints 3-D tensors as slices", function()
    assert.are.equal("(1,.,.) =\n 0.0000  1.0000\n 2.0000  3.0000\n\n" ..
                     "(2,.,.) =\n 4.0000  5.0000\n 6.0000  7.0000\n" ..
                     "[umbra.Tensor float32 of size 2x2x2]",
                     tostring(umbra.arange(8):view(2, 2, 2)))
  end)

  it("abbreviates dimensions longer than 10", function()
    local s = tostring(umbra.arange(24, "int64"):view(12, 2))
    assert.are.equal("  0   1\n  2   3\n  4   5\n...\n 18  19\n 20  21\n 22  23\n" ..
                     "[umbra.Tensor int64 of size 12x2]", s)
    local r = tostring(umbra.arange(11, "int64"):view(1, 11))
    assert.are.equal("  0   1   2 ...   8   9  10\n[umbra.Tensor int64 of size 1x11]", r)
  end)

  it("prints scalars, empty and freed tensors", function()
    assert.are.equal(" 2.5000\n[umbra.Tensor float32 with no dimensions]", tostring(umbra.tensor(2.5)))
    assert.are.equal("[umbra.Tensor float32 of size 0x3]", tostring(umbra.zeros(0, 3)))
    local t = umbra.zeros(2)
    t:free()
    assert.are.equal("[umbra.Tensor (freed)]", tostring(t))
  end)
end)

describe("arithmetic", function()
  local a = umbra.tensor{{1, 2}, {3, 4}}

  it("takes numbers on either side of an operator", function()
    assert.are.same({{2, 3}, {4, 5}}, values(a + 1))
    assert.are.same({{2, 3}, {4, 5}}, values(1 + a))
    assert.are.same({{0, 1}, {2, 3}}, values(a - 1))
    assert.are.same({{9, 8}, {7, 6}}, values(10 - a))
    assert.are.same({{2, 4}, {6, 8}}, values(a * 2))
    assert.are.same({{2, 4}, {6, 8}}, values(2 * a))
    assert.are.same({{0.5, 1}, {1.5, 2}}, values(a / 2))
    close({{12, 6}, {4, 3}}, values(12 / a))
    assert.are.same({{1, 4}, {9, 16}}, values(a ^ 2))
    assert.are.same({{2, 4}, {8, 16}}, values(2 ^ a))
    assert.are.same({{-1, -2}, {-3, -4}}, values(-a))
  end)

  it("multiplies elementwise with *", function()
    assert.are.same({{1, 4}, {9, 16}}, values(a * a))
    assert.are.same({{0, 0}, {0, 0}}, values(a - a))
    assert.are.same({{1, 1}, {1, 1}}, values(a / a))
  end)

  it("broadcasts as NumPy, aligning sizes from the right", function()
    local m = umbra.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.are.same({{11, 22, 33}, {14, 25, 36}}, values(m + umbra.tensor{10, 20, 30}))
    local col = umbra.tensor{{1}, {2}}
    local row = umbra.tensor{{10, 20, 30}}
    assert.are.same({{10, 20, 30}, {20, 40, 60}}, values(col * row))
    -- per-channel values for NCHW go through a (C,1,1) shape
    local x = umbra.ones(2, 3, 2, 2)
    local per_channel = (x * umbra.tensor{1, 2, 3}:view(3, 1, 1))
    assert.are.same({2, 3, 2, 2}, per_channel:size())
    assert.are.equal(3, per_channel[2][3][2][1])
    assert.are.equal(2 * 4 * (1 + 2 + 3), per_channel:sum())
    expect_error("add: sizes 2x3 and 2 cannot be broadcast together", function()
      return m + umbra.tensor{1, 2}
    end)
  end)

  it("has method forms, in place ones returning self", function()
    assert.are.same({{3, 4}, {5, 6}}, values(a:add(2)))
    assert.are.same({{1, 2}, {3, 4}}, values(a))
    local b = a:clone()
    assert.is_true(rawequal(b, b:mul_(2)))
    assert.are.same({{2, 4}, {6, 8}}, values(b))
    b:sub_(a):div_(umbra.tensor{1, 2})
    assert.are.same({{1, 1}, {3, 2}}, values(b))
    assert.are.same({{3, 2}, {3, 4}}, values(a:maximum(umbra.tensor{3, 2})))
    assert.are.same({{1, 2}, {2, 2}}, values(a:minimum(2)))
    assert.are.same({{1, 8}, {27, 64}}, values(a:pow(3)))
  end)

  it("compares into 1/0 masks", function()
    assert.are.same({{0, 1}, {0, 0}}, values(a:eq(2)))
    assert.are.same({{1, 0}, {1, 1}}, values(a:ne(2)))
    assert.are.same({{1, 0}, {0, 0}}, values(a:lt(2)))
    assert.are.same({{1, 1}, {0, 0}}, values(a:le(2)))
    assert.are.same({{0, 0}, {1, 1}}, values(a:gt(2)))
    assert.are.same({{0, 1}, {1, 1}}, values(a:ge(2)))
    assert.are.same({{1, 0}, {0, 1}}, values(a:eq(umbra.tensor{{1, 0}, {0, 4}})))
  end)

  it("maps unary functions", function()
    local x = umbra.tensor{-4, 0, 1, 4}
    assert.are.same({4, 0, 1, 4}, values(x:abs()))
    assert.are.same({-1, 0, 1, 1}, values(x:sign()))
    assert.are.same({0, 0, 1, 4}, values(x:relu()))
    assert.are.same({16, 0, 1, 16}, values(x:square()))
    assert.are.same({4, 0, -1, -4}, values(x:neg()))
    close({1, 2}, values(umbra.tensor{1, 4}:sqrt()))
    close({1, math.exp(1)}, values(umbra.tensor{0, 1}:exp()))
    close({0, 1}, values(umbra.tensor{1, math.exp(1)}:log()))
    local y = x:clone()
    assert.is_true(rawequal(y, y:abs_()))
    assert.are.same({4, 0, 1, 4}, values(y))
  end)

  it("clamps, with nil for an open side", function()
    local x = umbra.tensor{-2, 0.5, 3}
    assert.are.same({0, 0.5, 1}, values(x:clamp(0, 1)))
    assert.are.same({0, 0.5, 3}, values(x:clamp(0)))
    assert.are.same({-2, 0.5, 1}, values(x:clamp(nil, 1)))
    x:clamp_(-1, 2)
    assert.are.same({-1, 0.5, 2}, values(x))
    expect_error("clamp: lower bound 1.0 is above upper bound 0.0",
                 function() return x:clamp(1, 0) end)
  end)

  it("accumulates with axpy_", function()
    local x = umbra.tensor{1, 2}
    x:axpy_(0.5, umbra.tensor{4, 8})
    assert.are.same({3, 6}, values(x))
  end)

  it("rejects operands that are not tensors or numbers", function()
    expect_error("add: expected a tensor or a number, got string", function() return a + "1" end)
    expect_error("mul: expected a tensor or a number, got table", function() return a:mul({}) end)
    expect_error("add: expected a float32 tensor, got int64",
                 function() return umbra.zeros(2, "int64") + 1 end)
  end)

  it("compares tensors by identity with ==", function()
    local b = a:clone()
    assert.is_false(a == b)
    assert.is_true(a == a)
  end)
end)

describe("reductions", function()
  local m = umbra.tensor{{1, 5, 3}, {4, 2, 6}}

  it("reduce everything to a Lua number", function()
    assert.are.equal(21, m:sum())
    assert.are.equal(3.5, m:mean())
    assert.are.equal(6, m:max())
    assert.are.equal(1, m:min())
    assert.is_true(math.type(m:sum()) == "float")
  end)

  it("reduce one dimension, optionally keeping it", function()
    assert.are.same({5, 7, 9}, values(m:sum(1)))
    assert.are.same({9, 12}, values(m:sum(2)))
    assert.are.same({{9}, {12}}, values(m:sum(2, true)))
    assert.are.same({2.5, 3.5, 4.5}, values(m:mean(-2)))
    assert.are.same({5, 6}, values(m:max(2)))
    assert.are.same({1, 2, 3}, values(m:min(1)))
    assert.are.same({1, 3}, m:max(1, true):size())
  end)

  it("give 1-based positions from argmax and argmin", function()
    assert.are.equal(6, m:argmax())
    assert.are.equal(1, m:argmin())
    assert.is_true(math.type(m:argmax()) == "integer")
    local am = m:argmax(2)
    assert.are.equal("int64", am:dtype())
    assert.are.same({2, 3}, values(am))
    assert.are.same({2, 1, 2}, values(m:argmax(1)))
    assert.are.same({1, 2}, values(m:argmin(2)))
    assert.are.same({{1}, {2}}, values(m:argmin(2, true)))
  end)

  it("check the dimension", function()
    expect_error("sum: dimension 3 out of range (expected 1..2 or -2..-1)", function() return m:sum(3) end)
    expect_error("argmax: dimension 0 out of range", function() return m:argmax(0) end)
  end)

  it("computes softmax and log_softmax along a dimension", function()
    local s = umbra.tensor{{1, 2, 3}, {0, 0, 0}}:softmax(2)
    close({{0.09003057, 0.24472847, 0.66524096}, {1 / 3, 1 / 3, 1 / 3}}, values(s))
    local l = umbra.tensor{1, 2, 3}:log_softmax()
    close({-2.40760596, -1.40760596, -0.40760596}, values(l))
    local c = umbra.tensor{{1, 1}, {1, 1}}:softmax(1)
    close({{0.5, 0.5}, {0.5, 0.5}}, values(c))
  end)
end)

describe("matrix products", function()
  local a = umbra.tensor{{1, 2}, {3, 4}}
  local b = umbra.tensor{{5, 6}, {7, 8}}

  it("multiplies matrices", function()
    assert.are.same({{19, 22}, {43, 50}}, values(a:matmul(b)))
    assert.are.same({{19, 22}, {43, 50}}, values(umbra.matmul(a, b)))
    local r = umbra.tensor{{1, 2, 3}}:matmul(umbra.tensor{{1}, {1}, {1}})
    assert.are.same({{6}}, values(r))
    assert.are.same({{26, 30}, {38, 44}}, values(a:t():matmul(b)))
  end)

  it("adds a scaled product with addmm", function()
    local c = umbra.ones(2, 2)
    assert.are.same({{20, 23}, {44, 51}}, values(c:addmm(a, b)))
    assert.are.same({{40, 46}, {88, 102}}, values(c:addmm(a, b, 2, 2)))
  end)

  it("names mismatched sizes", function()
    expect_error("matmul: sizes (3x4) and (5x2) do not match",
                 function() return umbra.zeros(3, 4):matmul(umbra.zeros(5, 2)) end)
  end)
end)

describe("random fills", function()
  it("fill in place from a generator, reproducibly", function()
    local x = umbra.zeros(100):uniform_(umbra.Generator(3), -1, 1)
    local y = umbra.zeros(100):uniform_(umbra.Generator(3), -1, 1)
    assert.are.same(values(x), values(y))
    assert.is_true(x:min() >= -1 and x:max() < 1 and x:min() < -0.5 and x:max() > 0.5)
    local n = umbra.zeros(4000):normal_(umbra.Generator(4), 2, 0.5)
    close(2, n:mean(), 0.05)
    expect_error("normal_: a generator is required", function() return n:normal_() end)
  end)

  it("fill strided views with the same values as a contiguous buffer", function()
    local t = umbra.zeros(3, 2)
    t:t():uniform_(umbra.Generator(9))
    local c = umbra.zeros(2, 3):uniform_(umbra.Generator(9))
    assert.are.same(values(c), values(t:t()))
  end)
end)
