-- One convolution layer's forward and input gradient (evaluation mode, as in a PGD
-- iteration), run ROUNDS times, for instruction counts under callgrind
-- (scripts/bench/count-conv-paths; the path is what the plan picks, or UMBRA_WINOGRAD_TILE).
-- Usage: umbra scripts/bench/conv_layer.lua C_IN C_OUT K SIDE [BATCH [ROUNDS]]
local umbra = require "umbra"
local c_in, c_out, k, side = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
if not (c_in and c_out and k and side) then
  error("usage: conv_layer.lua C_IN C_OUT K SIDE [BATCH [ROUNDS]] (numbers), got " .. table.concat(arg, " "))
end
local batch, rounds = tonumber(arg[5] or "16"), tonumber(arg[6] or "1")
umbra.set_num_threads(1)
local g = umbra.Generator(1)
local conv = umbra.nn.Conv2d(c_in, c_out, k, {padding = "same", bias = false, generator = g})
conv:evaluate()
local x = umbra.rand({batch, c_in, side, side}, g)
local gy = umbra.rand({batch, c_out, side, side}, g)
for _ = 1, rounds do
  conv:forward(x)
  conv:backward_input(x, gy)
end
