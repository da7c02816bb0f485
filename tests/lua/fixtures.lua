-- Data-set files written for the tests (loaded with dofile; not a spec itself): IDX pairs
-- with gzip, CIFAR binary records, MATLAB v5 files for SVHN written byte by byte.
local helpers = dofile("tests/lua/helpers.lua")
local quote = helpers.quote

local M = {}

function M.write(path, s, gz)
  os.execute("mkdir -p " .. quote(path:match("(.*)/")))
  local f = assert(io.open(gz and path .. ".raw" or path, "wb"))
  f:write(s)
  f:close()
  if gz then
    assert(os.execute("gzip -c " .. quote(path .. ".raw") .. " > " .. quote(path)
                      .. " && rm " .. quote(path .. ".raw")))
  end
end

-- IDX pair: n images side x side, pixel k of image i = (i * 7 + k) % 256, label (i % 3) + lmin
function M.idx_pair(prefix, n, side, lmin)
  local px, lb = {}, {}
  for i = 0, n - 1 do
    local row = {}
    for k = 0, side * side - 1 do row[#row + 1] = string.char((i * 7 + k) % 256) end
    px[#px + 1] = table.concat(row)
    lb[#lb + 1] = string.char(i % 3 + lmin)
  end
  M.write(prefix .. "-images-idx3-ubyte.gz", string.pack(">I4I4I4I4", 0x803, n, side, side) .. table.concat(px), true)
  M.write(prefix .. "-labels-idx1-ubyte.gz", string.pack(">I4I4", 0x801, n) .. table.concat(lb), true)
end

-- CIFAR records (gzip unless gz is false): label (i % 10) [after a coarse byte], 3072 pixels of value i % 256
function M.cifar_file(path, n, label_bytes, gz)
  local recs = {}
  for i = 0, n - 1 do
    recs[#recs + 1] = (label_bytes == 2 and "\99" or "") .. string.char(i % 10)
                      .. string.rep(string.char(i % 256), 3072)
  end
  M.write(path, table.concat(recs), gz ~= false)
end

-- MATLAB v5 file with real numeric arrays {name, class, mi_type, dims, packed data}.
function M.mat5(path, vars)
  local function element(mi, payload)
    local pad = (8 - #payload % 8) % 8
    return string.pack("<I4I4", mi, #payload) .. payload .. string.rep("\0", pad)
  end
  local text = "MATLAB 5.0 MAT-file, umbra test fixture"
  local parts = {text .. string.rep(" ", 116 - #text),
                 string.rep("\0", 8), string.pack("<I2", 0x0100), "IM"}
  for _, v in ipairs(vars) do
    local dims = {}
    for _, d in ipairs(v.dims) do dims[#dims + 1] = string.pack("<i4", d) end
    local body = element(6, string.pack("<I4I4", v.class, 0)) .. element(5, table.concat(dims)) ..
                 element(1, v.name) .. element(v.mi, v.data)
    parts[#parts + 1] = element(14, body)
  end
  M.write(path, table.concat(parts))
end

-- SVHN-like: X(r, c, ch, i) = (r + 2c + 5ch + 7i) % 256 (column-major), y = 8, 9, 10, 8, ...
function M.svhn_file(path, n)
  local x, y = {}, {}
  for i = 0, n - 1 do
    for ch = 0, 2 do
      for c = 0, 31 do
        for r = 0, 31 do x[#x + 1] = string.char((r + 2 * c + 5 * ch + 7 * i) % 256) end
      end
    end
    y[#y + 1] = string.pack("<d", 8 + i % 3)
  end
  M.mat5(path, {{name = "X", class = 9, mi = 2, dims = {32, 32, 3, n}, data = table.concat(x)},
              {name = "y", class = 6, mi = 9, dims = {n, 1}, data = table.concat(y)}})
end

return M
