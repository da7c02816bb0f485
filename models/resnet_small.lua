-- ResNetSmall as the paper's authors trained it on SVHN and CIFAR (docs/method.md §1.3): a
-- pre-activation ResNet-20, widths 16/16/32/64, 3 basic units per stage, SAME 3x3 convs
-- without bias (He truncated-normal init), batch norm momentum 0.99 and eps 1.001e-5 (the
-- value TF's fused kernel used), avg-pool + zero channel-pad shortcuts, global average
-- pool and a dense layer. 269,722 parameters for 10 classes, 275,572 for 100.
-- Quirk kept: the FIRST unit of every stage (block_s_0) activates before the split, so
-- its shortcut sees ReLU(BN(x)); the other units' shortcuts see the raw x.
--
-- umbra path                         authors' TF variable (HWIO kernels -> OIHW)
-- block_init.conv.weight             block_init/conv/weights
-- block_s_0.pre.bn1.*                block_s_0/shared_activation/batch_normalization/*
-- block_s_u.main.bn1.* (u = 1, 2)    block_s_u/residual_only_activation/batch_normalization/*
-- block_s_u.main.conv1.weight        block_s_u/sub1/conv1/weights
-- block_s_u.main.bn2.*               block_s_u/sub2/batch_normalization/*
-- block_s_u.main.conv2.weight        block_s_u/sub2/conv2/weights
-- unit_last.bn.*                     unit_last/batch_normalization/*
-- logit.fc.weight, logit.fc.bias     logit/fc/weights (transposed), logit/fc/biases
-- with batch norm  weight = gamma, bias = beta, running_mean = moving_mean,
-- running_var = moving_variance.
-- usage: require("models.resnet_small"){num_classes = 10, generator = g | seed = 1,
--                                       bn_eps = 1.001e-5, bn_momentum = 0.99}
local umbra = require "umbra"
local nn = require "umbra.nn"

return function(opts)
  opts = opts or {}
  local g = opts.generator or umbra.Generator(opts.seed or 1)
  local classes = opts.num_classes or 10
  local eps, momentum = opts.bn_eps or 1.001e-5, opts.bn_momentum or 0.99

  local function bn(c) return nn.BatchNorm2d(c, {momentum = momentum, eps = eps}) end
  local function conv3(c_in, c_out, stride)
    return nn.Conv2d(c_in, c_out, 3, {stride = stride, padding = "same", bias = false, generator = g})
  end

  local function unit(c_in, c_out, stride, shared_activation)
    local main = nn.Sequential{}
    if not shared_activation then
      main:add("bn1", bn(c_in))
      main:add("relu1", nn.ReLU())
    end
    main:add("conv1", conv3(c_in, c_out, stride))
    main:add("bn2", bn(c_out))
    main:add("relu2", nn.ReLU())
    main:add("conv2", conv3(c_out, c_out, 1))
    local pre, shortcut
    if shared_activation then pre = nn.Sequential{{"bn1", bn(c_in)}, {"relu1", nn.ReLU()}} end
    if c_in ~= c_out then
      -- TF: avg_pool with window = stride, VALID; then zero channels split evenly
      local pad = (c_out - c_in) // 2
      shortcut = nn.Sequential{
        {"pool", nn.AvgPool2d(stride, {stride = stride, padding = "valid"})},
        {"pad", nn.ChannelPad(pad, c_out - c_in - pad)},
      }
    end
    return nn.Residual{pre = pre, main = main, shortcut = shortcut}
  end

  local net = nn.Sequential{{"block_init", nn.Sequential{{"conv", conv3(3, 16, 1)}}}}
  local widths, strides = {16, 16, 32, 64}, {1, 2, 2}
  for s = 1, 3 do
    for u = 0, 2 do
      local c_in = u == 0 and widths[s] or widths[s + 1]
      net:add(string.format("block_%d_%d", s, u), unit(c_in, widths[s + 1], u == 0 and strides[s] or 1, u == 0))
    end
  end
  net:add("unit_last", nn.Sequential{{"bn", bn(64)}, {"relu", nn.ReLU()}, {"pool", nn.GlobalAvgPool()}})
  net:add("logit", nn.Sequential{{"fc", nn.Linear(64, classes, {generator = g})}})
  return net
end
