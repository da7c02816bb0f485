-- Import one of the authors' TensorFlow ResNetSmall checkpoints (docs/method.md §1.3, §10) into
-- an umbra HDF5 checkpoint, or list a TensorFlow checkpoint's variables. Run it through
-- scripts/import-tf-checkpoint, or as: build/umbra scripts/import_tf_checkpoint.lua ...
--   --list PREFIX                        names, dtypes and shapes
--   PREFIX OUT.h5 [--num_classes K]      convert (K inferred from logit/fc/biases)
local umbra = require "umbra"
local argparse = require "argparse"

local parser = argparse("import-tf-checkpoint",
  "Convert a TensorFlow ResNetSmall checkpoint (prefix = path without .index) into an " ..
  "umbra HDF5 checkpoint, or list its variables.")
parser:argument("prefix", "checkpoint prefix: the path without .index / .data-00000-of-00001")
parser:argument("out", "umbra checkpoint (.h5) to write"):args("?")
parser:flag("--list", "print the variables with their dtypes and shapes, then exit")
parser:option("--num_classes", "number of classes (default: the size of logit/fc/biases)")
  :convert(tonumber)
parser:option("--dataset", "the data set it was trained on (default: from the file name, e.g. dataset=cifar10 "
              .. "or a folder cifar10_ceda)")
local args = parser:parse(arg)

local function fail(fmt, ...)
  io.stderr:write("import-tf-checkpoint: ", string.format(fmt, ...), "\n")
  os.exit(1)
end

-- The output must not be one of the checkpoint's own files (PREFIX PREFIX.index would
-- replace the index by the HDF5 file): compared after resolving links and "..".
local function resolved(path)
  local p = io.popen("realpath -m -- '" .. path:gsub("'", "'\\''") .. "' 2>/dev/null")
  local r = p:read("l")
  p:close()
  return r or path
end
if args.out then
  local out = resolved(args.out)
  local d = io.popen("ls -d -- '" .. args.prefix:gsub("'", "'\\''") .. "'.* 2>/dev/null")
  for input in d:lines() do
    if resolved(input) == out then fail("refusing to write %s: it is an input (%s)", args.out, input) end
  end
  d:close()
end

local function shape_str(shape) return "[" .. table.concat(shape, ", ") .. "]" end

local function numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

-- Optimizer slots (Momentum here; Adam/Adam_1 for the LeNet models), moving statistics
-- and the global step are state, not trainable parameters.
local function is_slot(name)
  return name:match("/Momentum$") or name:match("/Adam$") or name:match("/Adam_1$")
end
local function is_trainable(name)
  return not (is_slot(name) or name:match("moving_mean$") or name:match("moving_variance$")
              or name == "Variable" or name == "global_step")
end

local function group_digits(n)
  local s = tostring(n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local ck, err = umbra.core.tf_checkpoint_open(args.prefix)
if not ck then fail("%s", err) end
local entries = ck:list()

if args.list then
  local width = 8
  for _, e in ipairs(entries) do width = math.max(width, #e.name) end
  local trainable = 0
  for _, e in ipairs(entries) do
    print(string.format("%-" .. width .. "s  %-8s %s", e.name, e.dtype, shape_str(e.shape)))
    if is_trainable(e.name) then trainable = trainable + numel(e.shape) end
  end
  print(string.format("%d variables; %s trainable parameters (without optimizer slots, " ..
                      "moving statistics and the global step)", #entries, group_digits(trainable)))
  ck:close()
  return
end

ck:close()
if not args.out then fail("give an output file (PREFIX OUT.h5), or --list PREFIX") end

local tf_import = require "umbra.tf_import"
local model, info = tf_import.resnet_small(args.prefix, {num_classes = args.num_classes})
if not model then fail("%s", info) end
-- recorded so that evaluate.lua needs no --dataset
local dataset = args.dataset or tf_import.dataset_of(args.prefix)
if not dataset then
  io.stderr:write("import-tf-checkpoint: warning: the file name does not say the data set; "
                  .. "evaluate.lua will need --dataset (or import with --dataset)\n")
end
local ok, serr = umbra.checkpoint.save(args.out, {
  model = model,
  step = info.step,
  architecture = "resnet_small",
  config = {architecture = "resnet_small", num_classes = info.num_classes, bn_eps = info.bn_eps,
            source = args.prefix, dataset = dataset},
})
if not ok then fail("%s", serr) end
print(string.format("wrote %s: resnet_small, %d classes, %s parameters, step %s, data set %s", args.out,
                    info.num_classes, group_digits(model:num_parameters()), tostring(info.step),
                    dataset or "unknown"))
