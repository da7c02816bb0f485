-- umbra.data on fixture folders written here (IDX with gzip, CIFAR binary, a MATLAB v5
-- file for SVHN written byte by byte, PNGs from data.write_png): loading by name, batches,
-- shuffling and augmentation from a generator, refusals of missing, truncated and wrong
-- files with nothing leaked; scripts/fetch-data from a local folder; and, where UMBRA_DATA
-- holds them, the real MNIST and CIFAR-10 test files (the published image and label counts).
local umbra = require "umbra"
local data = require "umbra.data"
local helpers = dofile("tests/lua/helpers.lua")
local quote, run, tmpdir, settle = helpers.quote, helpers.run, helpers.tmpdir, helpers.settle

local fixtures = dofile("tests/lua/fixtures.lua")
local write, idx_pair, cifar_file, svhn_file = fixtures.write, fixtures.idx_pair, fixtures.cifar_file,
                                               fixtures.svhn_file

describe("umbra.data.load on fixtures", function()
  local root = tmpdir("data_spec")
  idx_pair(root .. "/mnist/train", 10, 28, 0)
  idx_pair(root .. "/mnist/t10k", 4, 28, 0)
  idx_pair(root .. "/emnist/emnist-letters-test", 5, 4, 1)
  cifar_file(root .. "/cifar10/test_batch.bin.gz", 10000, 1)
  svhn_file(root .. "/svhn/test_32x32.mat", 3)
  os.execute("mkdir -p " .. quote(root .. "/lsun_classroom"))
  for i = 1, 3 do
    assert(data.write_png(string.format("%s/lsun_classroom/img%d.png", root, i), umbra.full({3, 6, 4}, i / 10)))
  end
  teardown(function() os.execute("rm -rf " .. quote(root)) end)

  it("reads MNIST by name and describes it", function()
    local ds = assert(data.load("mnist", {split = "train", dir = root}))
    assert.are.equal("mnist train: 10 images 1x28x28, 10 classes", tostring(ds))
    assert.are.equal(10, ds:size())
    assert.are.equal(10, #ds)
    assert.are.equal(10, ds.num_classes)
    local x, y = ds:get(2)
    assert.are.same({1, 28, 28}, x:size())
    assert.are.equal(2, y)                              -- label 1 in the file, 1-based here
    assert.is_true(math.abs(x[1][1][3] - 9 / 255) < 1e-7)
    assert.are.same({4, 3, 3, 0, 0, 0, 0, 0, 0, 0}, ds:class_counts())
    assert.are.equal(4, assert(data.load("mnist", {split = "test", dir = root})):size())
    assert.are.equal(3, assert(data.load("mnist", {dir = root, limit = 3})):size())
  end)

  it("reads EMNIST letters transposed with labels 1..26, SVHN .mat, PNG folders, grayCIFAR", function()
    local em = assert(data.load("emnist_letters", {split = "test", dir = root}))
    assert.are.equal(26, em.num_classes)
    local x, y = em:get(1)
    assert.are.equal(1, y)
    assert.is_true(math.abs(x[1][1][2] - 4 / 255) < 1e-7)     -- stored (2, 1)
    local sv = assert(data.load("svhn", {split = "test", dir = root}))
    assert.are.equal("svhn test: 3 images 3x32x32, 10 classes", tostring(sv))
    local img, label = sv:get(3)
    assert.are.equal(1, label)                                        -- 10 -> digit 0 -> class 1
    assert.is_true(math.abs(img[2][4][6] - ((3 + 10 + 5 + 14) % 256) / 255) < 1e-7)
    local ls = assert(data.load("lsun_classroom", {dir = root, size = {8, 8}, limit = 2}))
    assert.are.equal("lsun_classroom train: 2 images 3x8x8, unlabelled", tostring(ls))
    local p, none = ls:get(2)
    assert.is_nil(none)
    assert.is_true(math.abs(p:sum() / (3 * 64) - 51 / 255) < 1e-6)   -- 0.2 -> 51
    local gray = assert(data.load("gray_cifar10", {split = "test", dir = root}))
    assert.are.equal("gray_cifar10 test: 10000 images 1x28x28, 10 classes", tostring(gray))
    local g1 = gray:get(6)
    assert.is_true(math.abs(g1:max() - 5 / 255) < 1e-7)
    assert.is_true(math.abs(g1:min() - 5 / 255) < 1e-7)
  end)

  it("iterates batches: drop_last, reused buffers, reproducible shuffling and augmentation", function()
    local ds = assert(data.load("cifar10", {split = "test", dir = root}))
    local n, last, seen = 0, nil, {}
    for x in ds:batches{batch_size = 3000} do
      n = n + 1
      last = x:size(1)
      seen[x] = true
    end
    local buffers = 0
    for _ in pairs(seen) do buffers = buffers + 1 end
    assert.are.equal(2, buffers)               -- one buffer, and a view of it for the last batch
    assert.are.same({4, 1000}, {n, last})
    n = 0
    for _ in ds:batches{batch_size = 3000, drop_last = true} do n = n + 1 end
    assert.are.equal(3, n)
    local function epoch(seed)
      local labels, sums = {}, {}
      for x, y in ds:batches{batch_size = 500, shuffle = true, generator = umbra.Generator(seed),
                             augment = true, drop_last = true} do
        labels[#labels + 1] = y[1]
        sums[#sums + 1] = x:sum()
      end
      return labels, sums
    end
    local l1, s1 = epoch(7)
    local l2, s2 = epoch(7)
    local l3 = epoch(8)
    assert.are.same(l1, l2)
    assert.are.same(s1, s2)
    assert.are_not.same(l1, l3)
    assert.are.equal("int64", select(2, ds:batches{batch_size = 2}()):dtype())
    assert.has_error(function() ds:batches{shuffle = true} end,
                     "batches: shuffling and augmentation need a generator (opts.generator = umbra.Generator(seed))")
    assert.has_error(function() ds:batches{batch_size = 0} end, "batches: batch_size must be a positive integer")
  end)

  it("returns nil and a message naming the missing file and fetch-data", function()
    local ds, msg = data.load("cifar100", {split = "train", dir = root})
    assert.is_nil(ds)
    assert.are.equal("umbra.data: cifar100 train: missing " .. root .. "/cifar100/train.bin[.gz] (also looked in "
                     .. root .. "); get it with: scripts/fetch-data cifar100", msg)
    local _, msg2 = data.load("lsun_classroom", {dir = root .. "/nothing"})
    assert.is_truthy(msg2:find("scripts/fetch-data lsun_classroom", 1, true))
    assert.has_error(function() data.load("mnist", {split = "val"}) end)
    assert.has_error(function() data.load("nope") end)
  end)

  it("refuses truncated and wrong files with the reason, leaking nothing", function()
    local bad = tmpdir("data_spec")
    local before = settle()
    idx_pair(bad .. "/mnist/train", 10, 28, 0)
    local gz = quote(bad .. "/mnist/train-images-idx3-ubyte.gz")
    os.execute("head -c $(( $(stat -c %s " .. gz .. ") / 2 )) " .. gz .. " > " .. quote(bad .. "/x.gz")
               .. " && mv " .. quote(bad .. "/x.gz") .. " " .. gz)
    local ds, msg = data.load("mnist", {dir = bad})
    assert.is_nil(ds)
    assert.is_truthy(msg:find("train-images-idx3-ubyte.gz: the header declares 10 images of 28x28 pixels", 1, true),
                     msg)
    assert.is_truthy(msg:find("(truncated or damaged file", 1, true), msg)
    write(bad .. "/mnist/t10k-images-idx3-ubyte.gz", string.pack(">I4I4", 0x801, 4) .. "abcd", true)
    idx_pair(bad .. "/mnist/t10k-lab", 4, 28, 0)
    os.execute("cp " .. quote(bad .. "/mnist/t10k-lab-labels-idx1-ubyte.gz") .. " "
               .. quote(bad .. "/mnist/t10k-labels-idx1-ubyte.gz"))
    ds, msg = data.load("mnist", {split = "test", dir = bad})
    assert.is_nil(ds)
    assert.is_truthy(msg:find("expected magic number 0x00000803, found 0x00000801", 1, true), msg)
    write(bad .. "/cifar10/test_batch.bin", string.rep("\0", 3073 * 3))
    ds, msg = data.load("cifar10", {split = "test", dir = bad})
    assert.is_nil(ds)
    assert.is_truthy(msg:find("expected 10000 records of 3073 bytes (30730000 bytes), found 9219 bytes", 1, true),
                     msg)
    write(bad .. "/svhn/test_32x32.mat", "MATLAB 5.0 but not really")
    ds, msg = data.load("svhn", {split = "test", dir = bad})
    assert.is_nil(ds)
    assert.is_truthy(msg:find("test_32x32.mat", 1, true), msg)
    assert.are.equal(before, settle())
    os.execute("rm -rf " .. quote(bad))
  end)

  it("writes PNGs and refuses bad images", function()
    assert.has_error(function() data.write_png(root .. "/x.png", umbra.zeros(2, 3, 4)) end)
    local ok, msg = data.write_png("/nonexistent/dir/x.png", umbra.zeros(3, 4))
    assert.is_nil(ok)
    assert.is_truthy(msg:find("/nonexistent/dir/x.png", 1, true))
  end)
end)

describe("scripts/fetch-data", function()
  it("refuses a corrupted file from a local folder and writes nothing for it", function()
    local from, dest = tmpdir("data_spec"), tmpdir("data_spec")
    write(from .. "/mnist/t10k-labels-idx1-ubyte.gz", "not the labels", true)
    local out, rc = run("scripts/fetch-data mnist --from " .. quote(from) .. " --dest " .. quote(dest))
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("mnist/t10k-labels-idx1-ubyte: content SHA-256 mismatch: expected " ..
                              "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 1, true), out)
    assert.is_truthy(out:find("could not get: mnist/train-images-idx3-ubyte", 1, true), out)
    assert.is_nil(io.open(dest .. "/mnist/t10k-labels-idx1-ubyte.gz"))
    out, rc = run("scripts/fetch-data lsun_classroom --dest " .. quote(dest))
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("no automatic source", 1, true), out)
    os.execute("rm -rf " .. quote(from) .. " " .. quote(dest))
  end)

  local shared = os.getenv("UMBRA_DATA")
  if not (shared and io.open(shared .. "/mnist/t10k-labels-idx1-ubyte.gz")) then
    pending("real MNIST not under UMBRA_DATA: fetch-data copy from a local mirror not tested")
    return
  end
  it("copies and verifies MNIST from a local mirror", function()
    local dest = tmpdir("data_spec")
    local out, rc = run("scripts/fetch-data mnist --from " .. quote(shared) .. " --dest " .. quote(dest))
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("mnist/t10k-images-idx3-ubyte: content SHA-256 verified", 1, true), out)
    assert.are.equal(10000, assert(data.load("mnist", {split = "test", dir = dest})):size())
    os.execute("rm -rf " .. quote(dest))
  end)
end)

describe("the real data sets under UMBRA_DATA", function()
  local shared = os.getenv("UMBRA_DATA")
  local have = shared and io.open(shared .. "/mnist/train-labels-idx1-ubyte.gz") and
               io.open(shared .. "/cifar10/test_batch.bin.gz")
  if not have then
    pending("UMBRA_DATA does not hold mnist/ and cifar10/test_batch.bin.gz: real data not checked")
    return
  end
  it("MNIST: counts and first labels as published", function()
    local tr = assert(data.load("mnist", {split = "train"}))
    assert.are.same({5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}, tr:class_counts())
    local te = assert(data.load("mnist", {split = "test"}))
    assert.are.same({980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}, te:class_counts())
    local first = {}
    for i = 1, 10 do first[i] = select(2, te:get(i)) - 1 end
    assert.are.same({7, 2, 1, 0, 4, 1, 4, 9, 5, 9}, first)
  end)
  it("CIFAR-10 test: 1000 per class, first labels as published", function()
    local te = assert(data.load("cifar10", {split = "test"}))
    assert.are.same({1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, te:class_counts())
    local first = {}
    for i = 1, 20 do first[i] = select(2, te:get(i)) - 1 end
    assert.are.same({3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6}, first)
  end)
end)
