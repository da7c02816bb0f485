-- umbra.data: the paper's data sets by name, read from $UMBRA_DATA (default data/), one
-- folder per set, and iterated in float32 NCHW batches in [0,1]:
--   local ds = assert(data.load("mnist", {split = "train"}))
--   for x, y in ds:batches{batch_size = 128, shuffle = true, generator = g, drop_last = true,
--                          augment = true} do ... end
-- Labels are 1-based (1..num_classes). The batch tensors are reused from one step to the
-- next: clone what must outlive the step. Augmentation as the authors' (docs/method.md §2.4):
-- random crop with 4-pixel zero padding, CIFAR also a horizontal flip (before the crop).
local core = require "umbra.core"

local data = {}

local Dataset = {}
Dataset.__index = Dataset

-- idx(prefix): the pair of IDX files of one split, each plain or .gz
local function idx_files(prefix)
  return {prefix .. "-images-idx3-ubyte", prefix .. "-labels-idx1-ubyte"}
end

local MNIST_AUG = {flip = false, crop_pad = 4}
local CIFAR_AUG = {flip = true, crop_pad = 4}

-- name -> how to read it: folder(s) to look in, files per split, reader
local SETS = {
  mnist = {folder = "mnist", kind = "idx", classes = 10, aug = MNIST_AUG,
           files = {train = idx_files("train"), test = idx_files("t10k")}},
  fashion_mnist = {folder = "fashion_mnist", kind = "idx", classes = 10, aug = MNIST_AUG,
                   system = "/usr/share/datasets/fashion-mnist",
                   files = {train = idx_files("train"), test = idx_files("t10k")}},
  emnist_letters = {folder = "emnist", kind = "idx", classes = 26, aug = MNIST_AUG, transpose = true,
                    label_min = 1, files = {train = idx_files("emnist-letters-train"),
                                            test = idx_files("emnist-letters-test")}},
  cifar10 = {folder = "cifar10", kind = "cifar", classes = 10, label_bytes = 1, aug = CIFAR_AUG,
             files = {train = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                               "data_batch_4.bin", "data_batch_5.bin"}, test = {"test_batch.bin"}},
             records = {train = 10000, test = 10000}},
  cifar100 = {folder = "cifar100", kind = "cifar", classes = 100, label_bytes = 2, aug = CIFAR_AUG,
              files = {train = {"train.bin"}, test = {"test.bin"}}, records = {train = 50000, test = 10000}},
  svhn = {folder = "svhn", kind = "svhn", classes = 10, aug = MNIST_AUG, plain_only = true,
          files = {train = {"train_32x32.mat"}, test = {"test_32x32.mat"}}},
  gray_cifar10 = {kind = "gray", source = "cifar10", aug = MNIST_AUG},
  lsun_classroom = {folder = "lsun_classroom", kind = "png", aug = MNIST_AUG},
  imagenet_minus = {folder = "imagenet_minus", kind = "png", aug = MNIST_AUG},
}

--- data.names() -> sorted list of the set names data.load knows
function data.names()
  local out = {}
  for name in pairs(SETS) do out[#out + 1] = name end
  table.sort(out)
  return out
end

local function is_dir(path)
  local f = io.open(path .. "/.", "rb")
  if f then f:close() end
  return f ~= nil
end

-- Whether path can be opened: true; false when it does not exist; false, message for
-- any other reason (permission, a loop of links...), which must not read as "missing".
local function probe(path)
  local f, msg, code = io.open(path, "rb")
  if f then f:close(); return true end
  if code == 2 then return false end   -- ENOENT
  return false, msg
end

-- The existing file base or (unless plain_only) base.gz; nil when neither exists; nil,
-- message when one exists but cannot be read.
local function find(base, plain_only)
  local ok, err = probe(base)
  if ok then return base end
  if err then return nil, err end
  if not plain_only then
    ok, err = probe(base .. ".gz")
    if ok then return base .. ".gz" end
    if err then return nil, err end
  end
  return nil
end

-- Folders to look in, in order: <root>/<folder>, <root> itself (opts.dir naming the set's
-- own folder), and the system copy (Debian's dataset-fashion-mnist).
local function candidates(spec, opts)
  local root = opts.dir or os.getenv("UMBRA_DATA") or "data"
  if root == "" then root = "data" end
  local out = {root .. "/" .. spec.folder}
  if opts.dir then out[#out + 1] = opts.dir end
  if spec.system then out[#out + 1] = spec.system end
  return out
end

-- The full paths of all of names in the first candidate folder holding them all, or
-- nil, message naming what is missing where.
local function locate(name, spec, opts, names)
  local dirs = candidates(spec, opts)
  for _, dir in ipairs(dirs) do
    local paths = {}
    for i, base in ipairs(names) do paths[i] = find(dir .. "/" .. base, spec.plain_only) end
    if #paths == #names then return paths end
  end
  for _, dir in ipairs(dirs) do
    for _, base in ipairs(names) do
      local _, err = find(dir .. "/" .. base, spec.plain_only)
      if err then return nil, string.format("umbra.data: %s %s: cannot read %s", name, opts.split, err) end
    end
  end
  local missing
  for _, base in ipairs(names) do
    if not find(dirs[1] .. "/" .. base, spec.plain_only) then missing = dirs[1] .. "/" .. base; break end
  end
  return nil, string.format("umbra.data: %s %s: missing %s%s%s; get it with: scripts/fetch-data %s",
                            name, opts.split, missing, spec.plain_only and "" or "[.gz]",
                            #dirs > 1 and " (also looked in " .. table.concat(dirs, ", ", 2) .. ")" or "",
                            spec.source or name)
end

local function wrap(c, name, split, spec)
  local ch, h, w = c:shape()
  return setmetatable({_c = c, name = name, split = split, num_classes = c:num_classes(),
                       channels = ch, height = h, width = w,
                       augmentation = {flip = spec.aug.flip, crop_pad = spec.aug.crop_pad}}, Dataset)
end

local readers = {}

function readers.idx(name, spec, opts, label)
  local paths, err = locate(name, spec, opts, spec.files[opts.split])
  if not paths then return nil, err end
  return core.data_read_idx(paths[1], paths[2], label, spec.transpose or false, spec.label_min or 0, spec.classes)
end

function readers.cifar(name, spec, opts, label)
  local paths, err = locate(name, spec, opts, spec.files[opts.split])
  if not paths then return nil, err end
  local records = {}
  for i = 1, #paths do records[i] = spec.records[opts.split] end
  return core.data_read_cifar(paths, records, spec.label_bytes, spec.classes, label)
end

function readers.svhn(name, spec, opts, label)
  local paths, err = locate(name, spec, opts, spec.files[opts.split])
  if not paths then return nil, err end
  return core.data_read_svhn(paths[1], label)
end

-- grayCIFAR-10 (docs/method.md §2.4): CIFAR-10 as 28x28 gray, the mean of R, G, B resized with
-- PIL's bilinear filter (antialiased when shrinking, see core/data/data.h).
function readers.gray(_, _, opts, label)
  local src, err = readers.cifar("cifar10", SETS.cifar10, opts, "cifar10 " .. opts.split)
  if not src then return nil, err end
  local c = src:gray_resize(28, 28, label)
  src:free()
  return c
end

-- A folder of PNGs: <folder>/<split>/ when that exists, else <folder>/ itself; the first
-- opts.limit images in name order, resized to opts.size (default 32x32).
function readers.png(name, spec, opts, label)
  local dir
  for _, d in ipairs(candidates(spec, opts)) do
    if is_dir(d .. "/" .. opts.split) then dir = d .. "/" .. opts.split; break end
    if is_dir(d) then dir = d; break end
  end
  if not dir then
    return nil, string.format("umbra.data: %s: missing the image folder %s (PNG files); "
                              .. "get it with: scripts/fetch-data %s",
                              name, candidates(spec, opts)[1], name)
  end
  local size = opts.size or {32, 32}
  return core.data_read_png_folder(dir, size[1], size[2], opts.limit or 0, label)
end

--- data.load(name, {split = "train" | "test", dir = root or set folder, limit = n,
---                  size = {h, w} (image folders)}) -> Dataset | nil, message
function data.load(name, opts)
  opts = opts or {}
  local spec = SETS[name]
  if not spec then
    error("umbra.data.load: unknown data set '" .. tostring(name) .. "' (known: " ..
          table.concat(data.names(), ", ") .. ")", 2)
  end
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error("umbra.data.load: split must be 'train' or 'test', got '" .. tostring(split) .. "'", 2)
  end
  if opts.limit ~= nil and (math.type(opts.limit) ~= "integer" or opts.limit < 1) then
    error("umbra.data.load: limit must be a positive integer", 2)
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.split = split
  local c, err = readers[spec.kind](name, spec, o, name .. " " .. split)
  if not c then return nil, err end
  if opts.limit then c:take(opts.limit) end
  return wrap(c, name, split, spec)
end

Dataset.__tostring = function(self) return tostring(self._c) end
Dataset.__len = function(self) return self._c:size() end
Dataset.__close = function(self) self._c:free() end

--- ds:size() -> number of images
function Dataset:size() return self._c:size() end
--- ds:shape() -> channels, height, width
function Dataset:shape() return self._c:shape() end
--- ds:get(i) -> image (C x H x W float32 in [0,1]), label (1-based; nil when unlabelled)
function Dataset:get(i) return self._c:get(i) end
--- ds:class_counts() -> {count of class 1, ..., count of class K}
function Dataset:class_counts() return self._c:class_counts() end
--- ds:free(): release the images now rather than at collection
function Dataset:free() self._c:free() end

local function check_positive(v, what)
  if math.type(v) ~= "integer" or v < 1 then error("batches: " .. what .. " must be a positive integer", 3) end
end

--- ds:batches{batch_size = 128, shuffle = false, generator = g, drop_last = false,
---            augment = false | true (the set's own) | {flip =, crop_pad =}, device = "cpu"}
--- -> iterator of x (n x C x H x W float32), y (n int64, 1-based labels). The order is
--- drawn from the generator when the iteration starts (one epoch per call), then each
--- batch's augmentation; the same generator state gives the same epoch.
function Dataset:batches(opts)
  opts = opts or {}
  local bs = opts.batch_size or 128
  check_positive(bs, "batch_size")
  local g = opts.generator
  if g ~= nil and not core.is_generator(g) then error("batches: generator must be an umbra.Generator", 2) end
  local aug = opts.augment
  local flip, pad = false, 0
  if aug == true then flip, pad = self.augmentation.flip, self.augmentation.crop_pad
  elseif type(aug) == "table" then flip, pad = aug.flip or false, aug.crop_pad or 0
  elseif aug ~= nil and aug ~= false then error("batches: augment must be a boolean or {flip =, crop_pad =}", 2) end
  if (opts.shuffle or flip or pad > 0) and not g then
    error("batches: shuffling and augmentation need a generator (opts.generator = umbra.Generator(seed))", 2)
  end
  local n = self:size()
  local order = opts.shuffle and g:permutation(n) or nil
  local nb = opts.drop_last and n // bs or (n + bs - 1) // bs
  local c, h, w = self:shape()
  local x, y = core.empty({bs, c, h, w}), core.empty({bs}, "int64")
  local device = opts.device and opts.device ~= "cpu" and opts.device or nil
  local xd, yd = nil, nil
  if device then xd, yd = x:to(device), y:to(device) end
  local b = 0
  return function()
    if b >= nb then return nil end
    local first = b * bs
    local count = math.min(bs, n - first)
    b = b + 1
    local xb, yb = x, y
    if count < bs then xb, yb = x:narrow(1, 1, count), y:narrow(1, 1, count) end
    self._c:batch_into(xb, yb, order, first, count, flip, pad, g)
    if not device then return xb, yb end
    local xo, yo = xd, yd
    if count < bs then xo, yo = xd:narrow(1, 1, count), yd:narrow(1, 1, count) end
    return xo:copy_(xb), yo:copy_(yb)
  end
end

--- data.load_folder(dir, {size = {h, w}, channels = 3 | 1, limit = n}) -> Dataset | nil, message:
--- the PNG files of a folder of one's own (unlabelled, in name order), resized to size
--- (default 32x32); channels = 1 takes each image's channel mean (as grayCIFAR-10), for an
--- MNIST-like model. Outlier Exposure draws from such a folder (recipes/train.lua --outliers).
function data.load_folder(dir, opts)
  opts = opts or {}
  if type(dir) ~= "string" or not is_dir(dir) then
    return nil, "umbra.data.load_folder: expected a folder of PNG files, got " .. tostring(dir)
  end
  local size = opts.size or {32, 32}
  local channels = opts.channels or 3
  if channels ~= 1 and channels ~= 3 then
    error("umbra.data.load_folder: channels must be 1 or 3, got " .. tostring(channels), 2)
  end
  if opts.limit ~= nil and (math.type(opts.limit) ~= "integer" or opts.limit < 1) then
    error("umbra.data.load_folder: limit must be a positive integer", 2)
  end
  local label = "folder " .. dir
  local c, err = core.data_read_png_folder(dir, size[1], size[2], opts.limit or 0, label)
  if not c then return nil, err end
  if channels == 1 then
    local rgb = c
    c = rgb:gray_resize(size[1], size[2], label)
    rgb:free()
  end
  return wrap(c, dir, "folder", {aug = {flip = false, crop_pad = 0}})
end

--- data.write_png(path, image) -> true | nil, message: a float32 HxW or CxHxW image in
--- [0,1] (C = 1 or 3) as an 8-bit PNG.
function data.write_png(path, image) return core.data_write_png(path, image) end

data.Dataset = Dataset
return data
