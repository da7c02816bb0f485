-- LeNet as the paper's authors trained it on MNIST (docs/method.md §1.2): conv 5x5 1->32 same
-- with bias, ReLU, max-pool 2 stride 2 same, conv 5x5 32->64 same with bias, ReLU,
-- max-pool, flatten (3136), fc 1024, ReLU, fc 10. 3,274,634 parameters.
-- Paths and the authors' TF names: conv1.{weight,bias} = conv1/conv1/{weights,biases}
-- (HWIO -> OIHW), conv2.* = conv2/conv2/*, fc1.* = fc1/{weights,biases}, fc2.* = fc2/*
-- (dense weights transposed to (out, in)). TF flattens NHWC, umbra NCHW: importing fc1
-- would also need its 3136 input rows permuted from (h, w, c) to (c, h, w) order.
-- usage: require("models.lenet"){generator = g | seed = 1, num_classes = 10, channels = 1,
--                                activation = nn.ReLU (a constructor: a class written in Lua works too)}
local umbra = require "umbra"
local nn = require "umbra.nn"

return function(opts)
  opts = opts or {}
  local g = opts.generator or umbra.Generator(opts.seed or 1)
  local classes = opts.num_classes or 10
  local act = opts.activation or nn.ReLU
  local function conv(c_in, c_out)
    return nn.Conv2d(c_in, c_out, 5, {padding = "same", bias = true, generator = g})
  end
  return nn.Sequential{
    {"conv1", conv(opts.channels or 1, 32)},
    {"relu1", act()},
    {"pool1", nn.MaxPool2d(2, {stride = 2, padding = "same"})},
    {"conv2", conv(32, 64)},
    {"relu2", act()},
    {"pool2", nn.MaxPool2d(2, {stride = 2, padding = "same"})},
    {"flatten", nn.Flatten()},
    {"fc1", nn.Linear(7 * 7 * 64, 1024, {generator = g})},
    {"relu3", act()},
    {"fc2", nn.Linear(1024, classes, {generator = g})},
  }
end
