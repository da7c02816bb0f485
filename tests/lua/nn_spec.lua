-- umbra.nn from Lua: layer constructors and shapes, container naming (index or given
-- names, m[i], m.name), parameter paths, errors that name the module path and shapes,
-- criteria values and gradients, printing, ownership of results, and no leaks.
local umbra = require "umbra"
local nn = umbra.nn
local core = umbra.core
local helpers = dofile("tests/lua/helpers.lua")
local settle = helpers.settle

local function close(expected, got, tol)
  tol = tol or 1e-5
  assert(math.abs(expected - got) <= tol, string.format("expected %.7g, got %.7g", expected, got))
end

local function expect_error(text, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  msg = tostring(msg)
  assert(msg:find(text, 1, true), "error '" .. msg .. "' does not contain '" .. text .. "'")
end

local function shape(t)
  local s = {}
  for i = 1, t:dim() do s[i] = t:size(i) end
  return s
end


describe("nn layers", function()
  local g = umbra.Generator(1)

  it("compute the shapes of TF-style same and valid padding", function()
    local x = umbra.rand({2, 3, 32, 32}, g)
    assert.are.same({2, 16, 16, 16},
                    shape(nn.Conv2d(3, 16, 3, {stride = 2, padding = "same", generator = g}):forward(x)))
    assert.are.same({2, 4, 30, 30}, shape(nn.Conv2d(3, 4, 3, {generator = g}):forward(x)))
    assert.are.same({2, 4, 32, 31}, shape(nn.Conv2d(3, 4, {2, 4}, {padding = {1, 0, 1, 1}, generator = g}):forward(x)))
    assert.are.same({2, 3, 16, 16}, shape(nn.MaxPool2d(2, {padding = "same"}):forward(x)))
    assert.are.same({2, 3, 11, 11}, shape(nn.AvgPool2d(3, {stride = 3, padding = "same"}):forward(x)))
    assert.are.same({2, 3, 10, 10}, shape(nn.AvgPool2d(3, {stride = 3}):forward(x)))
    assert.are.same({2, 3}, shape(nn.GlobalAvgPool():forward(x)))
    assert.are.same({2, 3072}, shape(nn.Flatten():forward(x)))
    assert.are.same({2, 7, 32, 32}, shape(nn.ChannelPad(2, 2):forward(x)))
    assert.are.same({2, 3, 32, 32}, shape(nn.BatchNorm2d(3):forward(x)))
    assert.are.same({2, 5}, shape(nn.Linear(3, 5, g):forward(umbra.rand({2, 3}, g))))
  end)

  it("compute hand-checked values", function()
    -- 3x3 stride-2 `same` conv of 1..16 (4x4) with a ones kernel pads only bottom/right
    local conv = nn.Conv2d(1, 1, 3, {stride = 2, padding = "same", bias = false, generator = g})
    conv:named_parameters().weight:fill_(1)
    local x = umbra.arange(1, 17):view(1, 1, 4, 4)
    assert.are.same({54, 45, 72, 54}, conv:forward(x):view(4):to_table())
    local relu = nn.ReLU()
    assert.are.same({0, 0, 2}, relu:forward(umbra.tensor{-1, 0, 2}):to_table())
  end)

  it("need a generator for weights", function()
    expect_error("need a generator", nn.Linear, 2, 3)
    expect_error("must be an umbra.Generator", nn.Conv2d, 1, 2, 3, {generator = 5})
    assert.is_true(nn.is_module(nn.Linear(2, 3, {seed = 4})))
  end)

  it("initialise as the authors did", function()
    local lin = nn.Linear(400, 300, g)
    local w = lin:named_parameters().weight
    close(math.sqrt(2 / 400), (w * w):mean() ^ 0.5, 0.03 * math.sqrt(2 / 400))
    assert.are.equal(0, lin:named_parameters().bias:abs():sum())
    local bn = nn.BatchNorm2d(4)
    assert.are.same({1, 1, 1, 1}, bn:named_parameters().weight:to_table())
    assert.are.same({1, 1, 1, 1}, bn:named_buffers().running_var:to_table())
  end)

  it("reject bad shapes with the module and the sizes in the message", function()
    expect_error("expected 16 input channels, got 3", function()
      return nn.Conv2d(16, 8, 3, {generator = g}):forward(umbra.zeros(1, 3, 8, 8))
    end)
    expect_error("expected 10 input features, got 7", function()
      return nn.Linear(10, 2, g):forward(umbra.zeros(4, 7))
    end)
    expect_error("must be float32", function() return nn.ReLU():forward(umbra.zeros(3, "int64")) end)
    expect_error("contiguous", function() return nn.ReLU():forward(umbra.zeros(3, 4):t()) end)
    expect_error("output gradient is 2x3 but the output is 2x2", function()
      local l = nn.Linear(3, 2, g)
      local x = umbra.zeros(2, 3)
      l:forward(x)
      return l:backward(x, umbra.zeros(2, 3))
    end)
    expect_error("padding must be", nn.MaxPool2d, 2, {padding = "full"})
  end)

  it("say which way a convolution runs (kernel_paths), and only for a Conv2d", function()
    local c = nn.Conv2d(16, 16, 3, {padding = "same", generator = g})
    local fwd, gx = c:kernel_paths({2, 16, 32, 32})
    if os.getenv("UMBRA_WINOGRAD_TILE") ~= "2" then
      assert.are.equal("winograd F(4x4,3x3)", fwd)
      assert.are.equal("winograd F(4x4,3x3)", gx)
      assert.are.equal("winograd F(2x2,3x3)", (c:kernel_paths({2, 16, 8, 8})))
    end
    fwd, gx = nn.Conv2d(3, 16, 3, {padding = "same", generator = g}):kernel_paths({2, 3, 32, 32})
    assert.are.equal("im2col", fwd)
    assert.are.equal("sgemm + col2im", gx)
    expect_error("expected a Conv2d, got a ReLU", function() return nn.ReLU():kernel_paths({1, 2}) end)
    expect_error("expected 16 input channels, got 3", function() return c:kernel_paths({1, 3, 8, 8}) end)
  end)
end)

describe("nn containers", function()
  local g = umbra.Generator(2)

  local function unit()
    return nn.Residual{
      pre = nn.Sequential{{"bn1", nn.BatchNorm2d(16)}, {"relu1", nn.ReLU()}},
      main = nn.Sequential{{"conv1", nn.Conv2d(16, 32, 3, {stride = 2, padding = "same", bias = false, generator = g})},
                           {"bn2", nn.BatchNorm2d(32)}, nn.ReLU(),
                           {"conv2", nn.Conv2d(32, 32, 3, {padding = "same", bias = false, generator = g})}},
      shortcut = nn.Sequential{nn.AvgPool2d(2), nn.ChannelPad(8, 8)},
    }
  end

  it("name children by index or by name, and give dotted parameter paths", function()
    local net = nn.Sequential{{"stem", nn.Conv2d(3, 16, 3, {padding = "same", generator = g})}, nn.ReLU(),
                              {"block_2_0", unit()}}
    assert.are.equal(3, #net)
    assert.are.equal("ReLU", net[2]:type())
    assert.are.equal("Residual", net.block_2_0:type())
    assert.are.equal("Conv2d", net.block_2_0.main.conv1:type())
    assert.are.equal("ReLU", net.block_2_0.main[3]:type())
    assert.is_nil(net.nothing)
    assert.is_nil(net[7])
    local p = net:parameters()
    assert.are.same({"stem.weight", "stem.bias", "block_2_0.pre.bn1.weight", "block_2_0.pre.bn1.bias",
                     "block_2_0.main.conv1.weight", "block_2_0.main.bn2.weight", "block_2_0.main.bn2.bias",
                     "block_2_0.main.conv2.weight"}, p.names)
    assert.are.equal(#p, #p.grads)
    assert.are.same(shape(p[5]), shape(p.grads[5]))
    local convs = net:parameters("conv")
    assert.are.same({"block_2_0.main.conv1.weight", "block_2_0.main.conv2.weight"}, convs.names)
    local weights = net:parameters(function(path) return path:match("weight$") end)
    assert.are.equal(5, #weights)
    local buffers = net:named_buffers()
    assert.is_not_nil(buffers["block_2_0.pre.bn1.running_mean"])
    assert.is_not_nil(net:named_parameters()["block_2_0.main.bn2.bias"])
    assert.are.equal(448 + 32 + 4608 + 64 + 9216, net:num_parameters())
  end)

  it("run a whole pass in C and name the failing module", function()
    local net = nn.Sequential{{"stem", nn.Conv2d(3, 16, 3, {padding = "same", generator = g})},
                              {"block_2_0", unit()}}
    local y = net:forward(umbra.rand({2, 3, 8, 8}, g))
    assert.are.same({2, 32, 4, 4}, shape(y))
    -- a path is relative to the module called
    expect_error("forward: pre.bn1: BatchNorm2d: expected 16 channels, got 3",
                 function() return net.block_2_0:forward(umbra.zeros(1, 3, 8, 8)) end)
    expect_error("stem: Conv2d: expected 3 input channels, got 4 (input 1x4x8x8)",
                 function() return net:forward(umbra.zeros(1, 4, 8, 8)) end)
    -- a mismatch deep in the tree names the whole path
    local bad = nn.Sequential{{"block_2_0", nn.Residual{
      pre = nn.Sequential{{"bn1", nn.BatchNorm2d(16)}},
      main = nn.Sequential{{"conv1", nn.Conv2d(3, 16, 3, {padding = "same", generator = g})}}}}}
    expect_error("forward: block_2_0.main.conv1: Conv2d: expected 3 input channels, got 16 (input 1x16x8x8)",
                 function() return bad:forward(umbra.zeros(1, 16, 8, 8)) end)
  end)

  it("keep the convention rules", function()
    local relu = nn.ReLU()
    local a = nn.Sequential{relu}
    expect_error("already belongs to a container", nn.Sequential, {relu})
    expect_error("must not be a number", function() return nn.Sequential{{"3", nn.ReLU()}} end)
    expect_error("two children are named 'x'", function() return nn.Sequential{{"x", nn.ReLU()}, {"x", nn.ReLU()}} end)
    expect_error("is a Lua table", function() return nn.Sequential{{forward = function() end}} end)
    expect_error("the main branch gives 1x4x2x2 but the shortcut gives 1x2x4x4", function()
      return nn.Residual(nn.Conv2d(2, 4, 3, {stride = 2, padding = "same", generator = g}))
               :forward(umbra.zeros(1, 2, 4, 4))
    end)
    assert.are.equal(1, #a)
  end)

  it("computes input and parameter gradients that match finite differences", function()
    local net = nn.Sequential{nn.Linear(3, 4, g), nn.ReLU(), {"out", nn.Linear(4, 2, g)}}
    local x = umbra.tensor{{0.5, -0.3, 0.8}, {-0.2, 0.9, 0.4}}
    local r = umbra.tensor{{1, -2}, {0.5, 3}}
    local function objective()
      return (net:forward(x) * r):sum()
    end
    net:zero_grad()
    net:forward(x)
    local gx = net:backward(x, r)
    local h = 1e-2
    for i = 1, 2 do
      for j = 1, 3 do
        local v = x[i][j]
        x[i][j] = v + h
        local lp = objective()
        x[i][j] = v - h
        local lm = objective()
        x[i][j] = v
        close((lp - lm) / (2 * h), gx[i][j], 2e-3)
      end
    end
    local w, gw = net.out:named_parameters().weight, net.out:named_gradients().weight
    for i = 1, 2 do
      for j = 1, 4 do
        local v = w[i][j]
        w[i][j] = v + h
        local lp = objective()
        w[i][j] = v - h
        local lm = objective()
        w[i][j] = v
        close((lp - lm) / (2 * h), gw[i][j], 2e-3)
      end
    end
    -- backward_input leaves parameter gradients alone; input_grad = false gives none
    local before = gw:clone()
    net:forward(x)
    close(gx[1][2], net:backward_input(x, r)[1][2], 1e-6)
    assert.are.same(before:to_table(), gw:to_table())
    net:forward(x)
    assert.is_nil(net:backward(x, r, {input_grad = false}))
  end)

  it("hand out results the caller owns", function()
    local relu = nn.ReLU()
    local y1 = relu:forward(umbra.tensor{1, 2})
    local y2 = relu:forward(umbra.tensor{3, 4})
    assert.are.same({1, 2}, y1:to_table())
    assert.are.same({3, 4}, y2:to_table())
    local flat = nn.Sequential{nn.ReLU(), nn.Flatten()}
    local f1 = flat:forward(umbra.tensor{{1, 2}})
    flat:forward(umbra.tensor{{5, 6}})
    assert.are.same({{1, 2}}, f1:to_table())
  end)

  it("switches batch norm between batch and running statistics", function()
    local bn = nn.BatchNorm2d(1, {momentum = 0.99, eps = 1e-5})
    local x = umbra.tensor{1, 2, 3, 4}:view(2, 1, 1, 2)
    local y = bn:forward(x)
    close(-1.5 / math.sqrt(1.25 + 1e-5), y:view(4)[1], 1e-5)
    close(0.025, bn:named_buffers().running_mean[1], 1e-7)
    close(0.99 + 0.01 * 5 / 3, bn:named_buffers().running_var[1], 1e-6)
    assert.is_true(bn:is_training())
    bn:evaluate()
    assert.is_false(bn:is_training())
    close((1 - 0.025) / math.sqrt(0.99 + 0.01 * 5 / 3 + 1e-5), bn:forward(x):view(4)[1], 1e-5)
    close(0.025, bn:named_buffers().running_mean[1], 1e-7)
    bn:train()
    assert.is_true(bn:is_training())
  end)

  it("prints the architecture with shapes and parameter counts", function()
    local net = nn.Sequential{{"conv1", nn.Conv2d(1, 4, 3, {padding = "same", generator = g})}, nn.ReLU(),
                              nn.Flatten(), {"fc", nn.Linear(4 * 6 * 6, 10, g)}}
    local text = net:summary({8, 1, 6, 6})
    assert.truthy(text:find("(conv1) Conv2d(1 -> 4, 3x3, same, bias)", 1, true))
    assert.truthy(text:find("8x144", 1, true))
    assert.truthy(text:find("1,450", 1, true))
    assert.truthy(text:find("1,490 parameters", 1, true))
    net:forward(umbra.zeros(2, 1, 6, 6))
    assert.truthy(tostring(net):find("2x4x6x6", 1, true))
  end)
end)

describe("nn criteria", function()
  local z = umbra.tensor{{1, 2, 3}, {1, 1, 1}}
  local y = umbra.tensor({3, 1}, "int64")   -- class labels count from 1, as in Lua
  local lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))

  it("compute cross-entropy, max_conf and uniform_conf", function()
    close((lse - 3 + math.log(3)) / 2, nn.CrossEntropy():forward(z, y))
    close(lse - 3 + math.log(3), nn.CrossEntropy{reduction = "sum"}:forward(z, y))
    local per = nn.CrossEntropy{reduction = "none"}:forward(z, y)
    close(math.log(3), per[2])
    close(((3 - lse) - math.log(3)) / 2, nn.MaxConf():forward(z))
    close((lse - 2) + math.log(3), nn.UniformConf{reduction = "sum"}:forward(z))
    local uniform = umbra.full({2, 3}, 1 / 3)
    close(nn.UniformConf():forward(z), nn.CrossEntropy():forward(z, uniform))
  end)

  it("give gradients, scaled or weighted per example", function()
    local g = nn.CrossEntropy():backward(z, y)
    local p = math.exp(3 - lse)
    close((p - 1) / 2, g[1][3])
    local g2 = nn.CrossEntropy{reduction = "sum"}:backward(z, y, 0.5)
    close((p - 1) / 2, g2[1][3])
    local gw = nn.CrossEntropy{reduction = "none"}:backward(z, y, umbra.tensor{0, 2})
    close(0, gw[1][3])
    close(2 * (1 / 3 - 1), gw[2][1])
    local gm = nn.MaxConf{reduction = "sum"}:backward(z)
    close(1 - p, gm[1][3])
    local full = umbra.zeros(4, 3)
    local out = full:narrow(1, 3, 2)
    nn.UniformConf{reduction = "sum"}:backward(z, nil, 1, out)
    close(1 / 3 - 1 / 3, full[4][1], 1e-6)
    close(p - 1 / 3, full[3][3], 1e-6)
    close(0, full[1][1])
  end)

  it("reject bad targets and NaN", function()
    expect_error("class label 4 of example 2 is outside 1..3", function()
      return nn.CrossEntropy():forward(z, umbra.tensor({1, 4}, "int64"))
    end)
    expect_error("class label 0 of example 1", function()
      return nn.CrossEntropy():backward(z, umbra.tensor({0, 1}, "int64"))
    end)
    expect_error("must match the logits", function() return nn.CrossEntropy():forward(z, umbra.zeros(2, 4)) end)
    expect_error("NaN", function() return nn.MaxConf():forward(umbra.tensor{{0 / 0, 1}}) end)
    expect_error("reduction must be", nn.CrossEntropy, {reduction = "avg"})
  end)
end)

describe("nn memory", function()
  it("leaks nothing after many errors and a freed model", function()
    local before = settle()
    local g = umbra.Generator(3)
    for _ = 1, 20 do
      local net = nn.Sequential{{"c", nn.Conv2d(1, 2, 3, {generator = g})}, nn.ReLU(), nn.Flatten()}
      pcall(net.forward, net, umbra.zeros(1, 2, 5, 5))
      pcall(nn.Linear(2, 2, g).forward, nn.Linear(2, 2, g), umbra.zeros(3))
      pcall(nn.CrossEntropy().forward, nn.CrossEntropy(), umbra.zeros(2, 2), umbra.tensor({5, 1}, "int64"))
      local y = net:forward(umbra.zeros(1, 1, 5, 5))
      net:backward(umbra.zeros(1, 1, 5, 5), y)
    end
    assert.are.equal(before, settle())
  end)

  it("frees a model at once with <close>", function()
    collectgarbage("stop")
    local before = core.live_bytes()
    do
      local m <close> = nn.Linear(100, 100, umbra.Generator(1)) -- luacheck: ignore 211 (closed with the scope)
      assert.is_true(core.live_bytes() > before)
    end
    local after = core.live_bytes()
    collectgarbage("restart")
    assert.are.equal(before, after)
  end)
end)

describe("nn learning", function()
  it("fits two moons with an MLP to 100% training accuracy", function()
    local g = umbra.Generator(7)
    local n = 200
    local xs, ys = {}, {}
    for i = 1, n do
      local t = math.pi * g:uniform()
      local label = i % 2 + 1
      local px, py
      if label == 1 then px, py = math.cos(t), math.sin(t) else px, py = 1 - math.cos(t), 0.5 - math.sin(t) end
      xs[i] = {px + 0.05 * g:normal(), py + 0.05 * g:normal()}
      ys[i] = label
    end
    local x, y = umbra.tensor(xs), umbra.tensor(ys, "int64")
    local net = require("models.mlp"){sizes = {2, 32, 32, 2}, generator = g}
    local opt = umbra.optim.Adam(net:parameters(), {lr = 0.01})
    local ce = nn.CrossEntropy()
    for _ = 1, 400 do
      net:zero_grad()
      local logits = net:forward(x)
      net:backward(x, ce:backward(logits, y), {input_grad = false})
      opt:step()
    end
    local pred = net:forward(x):argmax(2)
    local correct = 0
    for i = 1, n do
      if pred[i] == ys[i] then correct = correct + 1 end
    end
    assert.are.equal(n, correct)
  end)
end)
