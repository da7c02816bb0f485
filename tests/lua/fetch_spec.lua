-- scripts/fetch-data against a loopback HTTP server (tests/lua/fixture_server.py) serving
-- small fixture files laid out as upstream's: MNIST and Fashion-MNIST .gz files, the
-- CIFAR-10/100 binary tarballs, SVHN .mat files and the EMNIST zip. The checksums are the
-- fixtures' (UMBRA_FETCH_SUMS), computed here. Also a truncated download, a wrong checksum
-- and a server error: each fails the fetch and leaves nothing (not even a part) in --dest.
local h = dofile("tests/lua/helpers.lua")
local fixtures = dofile("tests/lua/fixtures.lua")
local data = require "umbra.data"
local quote, run = h.quote, h.run

-- the hex digest a command line prints (path appended when given)
local function sum(cmd, path)
  local p = io.popen(cmd .. (path ~= "" and " " .. quote(path) or ""))
  local hex = p:read("l"):match("^(%x+)")
  p:close()
  return hex
end

local function files_under(dir)
  local p = io.popen("find " .. quote(dir) .. " -type f 2>/dev/null | sort")
  local out = {}
  for line in p:lines() do out[#out + 1] = line:sub(#dir + 2) end
  p:close()
  return out
end

local IDX = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}

describe("scripts/fetch-data from a local HTTP server", function()
  local tmp = h.tmpdir("fetch")
  local site, sums_path = tmp .. "/site", tmp .. "/sums"
  local sums = {}
  local function add(kind, key, hex) sums[#sums + 1] = kind .. " " .. key .. " " .. hex end

  -- MNIST and Fashion-MNIST: base/<name>.gz, checked by their content (MNIST) or the .gz (Fashion)
  for _, set in ipairs{"mnist", "fashion_mnist"} do
    fixtures.idx_pair(site .. "/" .. set .. "/train", 12, 28, 0)
    fixtures.idx_pair(site .. "/" .. set .. "/t10k", 6, 28, 0)
    for _, name in ipairs(IDX) do
      local gz = site .. "/" .. set .. "/" .. name .. ".gz"
      if set == "mnist" then
        add("content_sha256", "mnist/" .. name, sum("gzip -dc " .. quote(gz) .. " | sha256sum", ""))
      else
        add("download_md5", "fashion_mnist/" .. name .. ".gz", sum("md5sum", gz))
      end
    end
  end
  -- CIFAR: the binary tarballs with their member folders
  os.execute("mkdir -p " .. quote(site .. "/kriz/cifar-10-batches-bin") .. " "
             .. quote(site .. "/kriz/cifar-100-binary"))
  for i = 1, 5 do fixtures.cifar_file(site .. "/kriz/cifar-10-batches-bin/data_batch_" .. i .. ".bin", 4, 1, false) end
  -- umbra reads a CIFAR-10 batch only with its 10,000 records
  fixtures.cifar_file(site .. "/kriz/cifar-10-batches-bin/test_batch.bin", 10000, 1, false)
  fixtures.cifar_file(site .. "/kriz/cifar-100-binary/train.bin", 5, 2, false)
  fixtures.cifar_file(site .. "/kriz/cifar-100-binary/test.bin", 2, 2, false)
  os.execute("cd " .. quote(site .. "/kriz") .. " && tar -czf cifar-10-binary.tar.gz cifar-10-batches-bin"
             .. " && tar -czf cifar-100-binary.tar.gz cifar-100-binary && rm -r cifar-10-batches-bin cifar-100-binary")
  add("download_md5", "cifar-10-binary.tar.gz", sum("md5sum", site .. "/kriz/cifar-10-binary.tar.gz"))
  add("download_md5", "cifar-100-binary.tar.gz", sum("md5sum", site .. "/kriz/cifar-100-binary.tar.gz"))
  -- SVHN: .mat files
  fixtures.svhn_file(site .. "/housenumbers/train_32x32.mat", 4)
  fixtures.svhn_file(site .. "/housenumbers/test_32x32.mat", 2)
  for _, name in ipairs{"train_32x32.mat", "test_32x32.mat"} do
    add("download_md5", "svhn/" .. name, sum("md5sum", site .. "/housenumbers/" .. name))
  end
  -- EMNIST: a zip of gzip/emnist-*.gz
  for _, split in ipairs{"train", "test"} do
    fixtures.idx_pair(site .. "/zip/gzip/emnist-letters-" .. split, 3, 28, 1)
  end
  os.execute("cd " .. quote(site .. "/zip") .. " && zip -qr ../EMNIST.zip gzip && cd .. && rm -r zip")
  add("download_md5", "gzip.zip", sum("md5sum", site .. "/EMNIST.zip"))
  local f = assert(io.open(sums_path, "w"))
  f:write(table.concat(sums, "\n"), "\n")
  f:close()

  -- the server, stopped (by its process id) at the end
  local function serve(extra)
    local portfile = tmp .. "/port" .. #extra
    os.remove(portfile)
    local p = io.popen("python3 tests/lua/fixture_server.py " .. quote(site) .. " " .. quote(portfile) .. " " .. extra
                       .. " >/dev/null 2>&1 & echo $!")
    local pid = p:read("l")
    p:close()
    for _ = 1, 100 do
      local pf = io.open(portfile)
      if pf then
        local port = pf:read("l")
        pf:close()
        return "http://127.0.0.1:" .. port, pid
      end
      os.execute("sleep 0.1")
    end
    error("the fixture server did not start")
  end
  local base, pid = serve("")
  local function env(b)
    return string.format("UMBRA_FETCH_SUMS=%s UMBRA_MNIST_URL=%s/mnist UMBRA_FASHION_URL=%s/fashion_mnist "
                         .. "UMBRA_CIFAR_URL=%s/kriz UMBRA_SVHN_URL=%s/housenumbers UMBRA_EMNIST_URL=%s/EMNIST.zip "
                         .. "UMBRA_FASHION_DEB=/nonexistent ", quote(sums_path), b, b, b, b, b)
  end
  local pids = {pid}
  teardown(function()
    for _, id in ipairs(pids) do os.execute("kill " .. id .. " 2>/dev/null") end
    os.execute("rm -rf " .. quote(tmp))
  end)

  it("downloads, checks and unpacks every set", function()
    local dest = tmp .. "/all"
    local out, rc = run(env(base) .. "scripts/fetch-data all --dest " .. quote(dest))
    assert.are.equal(0, rc, out)
    assert.is_nil(out:find("WARNING", 1, true), out)   -- everything was checked
    assert.is_truthy(out:find("mnist/t10k-images-idx3-ubyte: content SHA-256 verified", 1, true), out)
    local sizes = {mnist = {12, 6}, fashion_mnist = {12, 6}, emnist_letters = {3, 3}, cifar10 = {nil, 10000},
                   svhn = {4, 2}}
    for set, n in pairs(sizes) do
      if n[1] then assert.are.equal(n[1], assert(data.load(set, {split = "train", dir = dest})):size(), set) end
      assert.are.equal(n[2], assert(data.load(set, {split = "test", dir = dest})):size(), set)
    end
    -- the small CIFAR files (umbra reads only full-size ones) arrived whole
    local function bytes(path)
      local file = assert(io.open(dest .. "/" .. path, "rb"))
      local n = #file:read("a")
      file:close()
      return n
    end
    for i = 1, 5 do assert.are.equal(4 * 3073, bytes("cifar10/data_batch_" .. i .. ".bin")) end
    assert.are.equal(5 * 3074, bytes("cifar100/train.bin"))
    assert.are.equal(2 * 3074, bytes("cifar100/test.bin"))
    for _, file in ipairs(files_under(dest)) do assert.is_nil(file:find("tmp", 1, true), file) end
    -- a second run finds everything in place
    out, rc = run(env(base) .. "scripts/fetch-data mnist --dest " .. quote(dest))
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("already present and verified", 1, true), out)
  end)

  it("refuses a truncated download and a server error, keeping nothing of them", function()
    local bad, bad_pid = serve("--truncate /mnist/t10k-images-idx3-ubyte.gz --fail /housenumbers/test_32x32.mat "
                               .. "--truncate /kriz/cifar-100-binary.tar.gz")
    pids[#pids + 1] = bad_pid
    local dest = tmp .. "/bad"
    local out, rc = run(env(bad) .. "scripts/fetch-data mnist svhn cifar100 --dest " .. quote(dest))
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("could not get: mnist/t10k-images-idx3-ubyte svhn/test_32x32.mat "
                              .. "cifar100/train.bin cifar100/test.bin", 1, true), out)
    assert.is_truthy(out:find("500", 1, true), out)
    -- what arrived whole is kept; of the rest, nothing (no part, no temporary name)
    assert.are.same({"mnist/t10k-labels-idx1-ubyte.gz", "mnist/train-images-idx3-ubyte.gz",
                     "mnist/train-labels-idx1-ubyte.gz", "svhn/train_32x32.mat"}, files_under(dest))
  end)

  it("refuses a download whose checksum is wrong", function()
    local wrong = tmp .. "/wrong_sums"
    local f2 = assert(io.open(wrong, "w"))
    local zeros = string.rep("0", 32)
    f2:write((table.concat(sums, "\n"):gsub("(download_md5 cifar%-10%-binary%.tar%.gz )%x+", "%1" .. zeros)))
    f2:close()
    local dest = tmp .. "/wrong"
    local with_wrong = env(base):gsub(quote(sums_path):gsub("%p", "%%%0"), quote(wrong))
    local out, rc = run(with_wrong .. "scripts/fetch-data cifar10 --dest " .. quote(dest))
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("MD5 mismatch", 1, true), out)
    assert.are.same({}, files_under(dest))
  end)
end)
