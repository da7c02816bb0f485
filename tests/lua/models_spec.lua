-- The model zoo: parameter counts as the paper's checkpoints (docs/method.md §1.2, §1.3),
-- parameter paths that map onto the authors' TF scopes, output shapes, seeded
-- initialisation, and that LeNet learns (the loss of 512 synthetic images drops 10x).
local umbra = require "umbra"
local nn, optim = umbra.nn, umbra.optim

local function count(list) local n = 0 for _ in pairs(list) do n = n + 1 end return n end

describe("models", function()
  it("have the paper's parameter counts", function()
    assert.are.equal(3274634, require("models.lenet")():num_parameters())
    assert.are.equal(269722, require("models.resnet_small"){num_classes = 10}:num_parameters())
    assert.are.equal(275572, require("models.resnet_small"){num_classes = 100}:num_parameters())
    assert.are.equal(2 * 100 + 100 + 100 * 100 + 100 + 100 * 2 + 2, require("models.mlp")():num_parameters())
    assert.are.equal(2 * 5 + 5 + 5 * 3 + 3, require("models.mlp"){sizes = {2, 5, 3}}:num_parameters())
  end)

  it("name LeNet's parameters after the authors' layers", function()
    local p = require("models.lenet")():parameters()
    assert.are.same({"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                     "fc2.weight", "fc2.bias"}, p.names)
  end)

  it("mirror the TF scopes in ResNetSmall's paths", function()
    local net = require("models.resnet_small"){seed = 3}
    local params, buffers = net:named_parameters(), net:named_buffers()
    assert.are.equal(59, count(params))             -- 19 convs, 19 BN (gamma, beta), fc (2)
    assert.are.equal(38, count(buffers))            -- 19 BN running mean and variance
    for _, path in ipairs{"block_init.conv.weight", "block_1_0.pre.bn1.weight", "block_1_0.main.conv1.weight",
                          "block_1_1.main.bn1.bias", "block_2_0.pre.bn1.bias", "block_2_0.main.conv1.weight",
                          "block_2_0.main.bn2.weight", "block_3_2.main.conv2.weight", "unit_last.bn.weight",
                          "logit.fc.weight", "logit.fc.bias"} do
      assert.is_not_nil(params[path], path)
    end
    assert.is_not_nil(buffers["block_3_1.main.bn1.running_var"])
    assert.is_not_nil(buffers["unit_last.bn.running_mean"])
    assert.is_nil(params["block_1_1.pre.bn1.weight"])   -- only the first unit of a stage shares
    assert.are.same({64, 32, 3, 3}, {params["block_3_0.main.conv1.weight"]:size(1), 32, 3, 3})
    assert.are.equal(10, params["logit.fc.weight"]:size(1))
    assert.are.equal("ChannelPad", net.block_2_0.shortcut.pad:type())
    assert.are.equal("Identity", net.block_1_0.shortcut:type())
  end)

  it("map inputs to logits", function()
    local g = umbra.Generator(1)
    local lenet = require("models.lenet"){generator = g}
    assert.are.same({2, 10}, {lenet:forward(umbra.rand({2, 1, 28, 28}, g)):size(1), 10})
    local y = require("models.resnet_small"){generator = g, num_classes = 100}:forward(umbra.rand({2, 3, 32, 32}, g))
    assert.are.equal(2, y:size(1))
    assert.are.equal(100, y:size(2))
    assert.truthy(require("models.resnet_small")():summary({1, 3, 32, 32}):find("%(block_3_0%) Residual%s+1x64x8x8"))
  end)

  it("initialise from the seed, with the authors' scales", function()
    local a = require("models.lenet"){seed = 5}:named_parameters()
    local b = require("models.lenet"){generator = umbra.Generator(5)}:named_parameters()
    local c = require("models.lenet"){seed = 6}:named_parameters()
    assert.are.equal(0, (a["fc1.weight"] - b["fc1.weight"]):abs():sum())
    assert.is_true((a["fc1.weight"] - c["fc1.weight"]):abs():sum() > 0)
    local function std(t) return ((t * t):mean()) ^ 0.5 end
    -- fc1: normal sigma 0.025254; conv2: 2-sigma truncated normal sigma 0.05 (std 0.05 * 0.8796)
    assert.is_true(math.abs(std(a["fc1.weight"]) - 0.025254) < 0.0005)
    assert.is_true(math.abs(std(a["conv2.weight"]) - 0.05 * 0.8796) < 0.002)
    assert.is_true(a["conv2.weight"]:abs():max() <= 2 * 0.05 + 1e-6)
  end)

  it("LeNet drives the loss of 512 synthetic images down 10x", function()
    local g = umbra.Generator(11)
    local n, classes = 512, 10
    local templates = umbra.rand({classes, 1, 28, 28}, g)
    local x = umbra.zeros(n, 1, 28, 28)
    local labels = {}
    for i = 1, n do
      local c = (i - 1) % classes + 1
      labels[i] = c
      x:narrow(1, i, 1):copy_(templates:narrow(1, c, 1) * 0.7 + umbra.rand({1, 1, 28, 28}, g) * 0.3)
    end
    local y = umbra.tensor(labels, "int64")
    local net = require("models.lenet"){generator = g}
    local opt = optim.Adam(net:parameters(), {lr = 1e-3})
    local ce = nn.CrossEntropy()
    local first, last
    for _ = 1, 6 do
      local total = 0
      for b = 0, n / 128 - 1 do
        local xb, yb = x:narrow(1, b * 128 + 1, 128), y:narrow(1, b * 128 + 1, 128)
        net:zero_grad()
        local z = net:forward(xb)
        local loss = ce:forward(z, yb)
        first = first or loss
        total = total + loss
        net:backward(xb, ce:backward(z, yb), {input_grad = false})
        opt:step()
      end
      last = total / (n / 128)
    end
    assert.is_true(last < first / 10, string.format("loss %.4f -> %.4f", first, last))
  end)
end)
