-- A fully connected ReLU network, by default the two-moons network of the paper's toy
-- experiment (docs/method.md §1.4, §7): 2 -> 100 -> 100 -> 2, ReLU after each hidden layer, linear
-- logits, weights N(0, 2/n_in), biases 0. Layers are named fc1, relu1, fc2, ...
-- usage: require("models.mlp"){sizes = {2, 100, 100, 2}, generator = g | seed = 1}
local umbra = require "umbra"
local nn = require "umbra.nn"

return function(opts)
  opts = opts or {}
  local g = opts.generator or umbra.Generator(opts.seed or 1)
  local sizes = opts.sizes or {2, 100, 100, 2}
  if #sizes < 2 then error("models.mlp: sizes needs at least an input and an output size", 2) end
  local net = nn.Sequential{}
  for i = 1, #sizes - 1 do
    net:add("fc" .. i, nn.Linear(sizes[i], sizes[i + 1], {generator = g}))
    if i < #sizes - 1 then net:add("relu" .. i, nn.ReLU()) end
  end
  return net
end
