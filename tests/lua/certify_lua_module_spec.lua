-- Certificates through modules written in Lua (nn.Module:extend with bound(self, lo, hi)):
-- a Lua scaled ReLU inside a Sequential is bounded exactly as the C ReLU scaled by hand, no
-- sampled point or PGD attack in the ball ever exceeds the bound, and a class without a bound,
-- a bound that fails, returns lo > hi or the wrong things are refused with the module's path.
local umbra = require "umbra"
local nn, certify, attack, eval = umbra.nn, umbra.certify, umbra.attack, umbra.eval

-- y = s * relu(x), s > 0 a parameter: nondecreasing, so the rule maps each end of the box
local ScaledReLU = nn.Module:extend("ScaledReLU")
function ScaledReLU:init(s) self:register_parameter("s", umbra.full({1}, s)) end
function ScaledReLU:forward(x) return x:relu() * self.s:item() end
function ScaledReLU:backward(x, gy) return gy * x:gt(0):float() * self.s:item() end
function ScaledReLU:bound(lo, hi) return lo:relu() * self.s:item(), hi:relu() * self.s:item() end

local function net(g, act)
  return nn.Sequential{nn.Linear(6, 16, {generator = g}), {"act", act}, nn.Linear(16, 16, {generator = g}),
                       nn.ReLU(), nn.Linear(16, 4, {generator = g})}
end

describe("certify through a Lua module", function()
  it("bounds a Lua scaled ReLU as the C ReLU with the scale folded into the next layer", function()
    local g = umbra.Generator(3)
    local lua_net = net(g, ScaledReLU(2.5))
    local c_net = net(umbra.Generator(3), nn.ReLU())
    local w = c_net:named_parameters()["3.weight"]
    w:copy_(w * 2.5)
    local z = umbra.rand({8, 6}, g)
    for _, eps in ipairs{0, 0.01, 0.1, 0.3} do
      local bl, dl = certify.confidence_bound(lua_net, z, eps)
      local bc, dc = certify.confidence_bound(c_net, z, eps)
      for i = 1, 8 do
        assert(math.abs(bl[i] - bc[i]) < 1e-5, string.format("eps %g point %d: %g vs %g", eps, i, bl[i], bc[i]))
      end
      assert((dl - dc):abs():max() < 1e-4)
    end
  end)

  -- points of the ball (sampled and PGD's) above their bound, and how many were checked
  local function violations_of(g, make_act, trials)
    local violations, checked = 0, 0
    for trial = 1, trials do
      local model = net(g, make_act(0.5 + trial))
      model:evaluate()
      local z = umbra.rand({16, 6}, g)
      for _, eps in ipairs{0.02, 0.1, 0.3} do
        local b = certify.confidence_bound(model, z, eps)
        local lo, hi = (z - eps):clamp(0, 1), (z + eps):clamp(0, 1)
        for _ = 1, 20 do
          local u = umbra.rand({16, 6}, g)
          local c = eval.max_conf(model:forward(lo + (hi - lo) * u):softmax(2))
          for i = 1, 16 do
            checked = checked + 1
            if c[i] > b[i] + 1e-5 then violations = violations + 1 end
          end
        end
        local _, obj = attack.pgd(model, z, {eps = eps, steps = 30, step = eps / 10, generator = g})
        for i = 1, 16 do
          checked = checked + 1
          if math.exp(obj[i]) > b[i] + 1e-5 then violations = violations + 1 end
        end
      end
    end
    return violations, checked
  end

  it("is never exceeded by sampled points or PGD in the ball", function()
    local violations, checked = violations_of(umbra.Generator(11), ScaledReLU, 4)
    assert.are.equal(4 * 3 * 16 * 21, checked)
    assert.are.equal(0, violations)
    -- the same check catches a rule that is too tight (both ends shrunk toward 0)
    local Shrunk = ScaledReLU:extend("Shrunk")
    function Shrunk.bound(_, lo, hi) return lo:relu() * 0.2, hi:relu() * 0.2 end
    assert.is_true(violations_of(umbra.Generator(11), Shrunk, 1) > 0)
  end)

  it("names the Lua module that has no bound, or whose bound is wrong", function()
    local g = umbra.Generator(5)
    local z = umbra.rand({2, 6}, g)
    local NoBound = nn.Module:extend("NoBound")
    function NoBound.forward(_, x) return x:relu() end
    assert.has_error(function() certify.confidence_bound(net(g, NoBound()), z, 0.1) end,
      "certify.confidence_bound: act: NoBound has no interval bound (a Lua module declares one as "
      .. "NoBound:bound(lo, hi) returning lo', hi')")
    local Swapped = ScaledReLU:extend("Swapped")
    function Swapped.bound(_, lo, hi) return hi:relu(), lo:relu() end
    local ok, err = pcall(certify.confidence_bound, net(g, Swapped(1)), z, 0.1)
    assert.is_false(ok)
    assert.matches("act: Swapped.bound: Swapped.bound returned lo > hi", err, 1, true)
    local Single = ScaledReLU:extend("Single")
    function Single.bound(_, lo) return lo end
    ok, err = pcall(certify.confidence_bound, net(g, Single(1)), z, 0.1)
    assert.is_false(ok)
    assert.matches("Single.bound must return two tensors (lo, hi), got nil for hi", err, 1, true)
    local Failing = ScaledReLU:extend("Failing")
    function Failing.bound() error("no rule for this input") end
    ok, err = pcall(certify.confidence_bound, net(g, Failing(1)), z, 0.1)
    assert.is_false(ok)
    assert.matches("act: Failing.bound: .*no rule for this input", err)
    local Shaped = ScaledReLU:extend("Shaped")
    function Shaped.bound(_, lo, hi) return lo, hi:narrow(2, 1, 3):contiguous() end
    ok, err = pcall(certify.confidence_bound, net(g, Shaped(1)), z, 0.1)
    assert.is_false(ok)
    assert.matches("Shaped.bound returned lo 2x16 and hi 2x3: expected one shape", err, 1, true)
  end)
end)
