-- A TensorBoard event file reader for the tests: TFRecord framing checked with a masked
-- CRC32C computed in pure Lua, Event protocol buffers decoded by hand.
local M = {}

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1) ~= 0 and ((c >> 1) ~ 0x82F63B78) or (c >> 1) end
  crc_table[i] = c
end
local function crc32c(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end
local function mask(c) return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xa282ead8) & 0xFFFFFFFF end

local function varint(s, i)
  local v, shift = 0, 0
  while true do
    local b = s:byte(i); i = i + 1
    v = v | ((b & 0x7f) << shift)
    if b < 0x80 then return v, i end
    shift = shift + 7
  end
end

-- decode the fields of a message into {field = {values}}
local function fields(s)
  local out, i = {}, 1
  while i <= #s do
    local key; key, i = varint(s, i)
    local f, wt = key >> 3, key & 7
    local v
    if wt == 0 then v, i = varint(s, i)
    elseif wt == 1 then v = string.unpack("<d", s, i); i = i + 8
    elseif wt == 5 then v = string.unpack("<f", s, i); i = i + 4
    elseif wt == 2 then local n; n, i = varint(s, i); v = s:sub(i, i + n - 1); i = i + n
    else error("wire type " .. wt) end
    out[f] = out[f] or {}
    table.insert(out[f], v)
  end
  return out
end

local function read_events(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  local events, i = {}, 1
  while i <= #data do
    local lenbytes = data:sub(i, i + 7)
    local len = string.unpack("<I8", lenbytes)
    local lcrc = string.unpack("<I4", data, i + 8)
    assert(lcrc == mask(crc32c(lenbytes)), "length CRC mismatch")
    local payload = data:sub(i + 12, i + 11 + len)
    local dcrc = string.unpack("<I4", data, i + 12 + len)
    assert(dcrc == mask(crc32c(payload)), "data CRC mismatch")
    events[#events + 1] = fields(payload)
    i = i + 16 + len
  end
  return events
end

M.read_events, M.fields, M.crc32c = read_events, fields, crc32c
return M
