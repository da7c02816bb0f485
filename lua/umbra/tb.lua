-- umbra.tb: TensorBoard summaries beyond scalars, encoded here as protocol buffers and
-- written through a writer's :value (core/io/tbevents.c): histograms (HistogramProto)
-- and text (a string tensor for the text plugin, which shows Markdown).
local tb = {}

local function varint(v)
  local out = {}
  repeat
    local byte = v & 0x7f
    v = v >> 7
    out[#out + 1] = string.char(byte | (v ~= 0 and 0x80 or 0))
  until v == 0
  return table.concat(out)
end

local function field_bytes(field, s) return varint((field << 3) | 2) .. varint(#s) .. s end
local function field_double(field, x) return varint((field << 3) | 1) .. string.pack("<d", x) end
local function field_varint(field, v) return varint(field << 3) .. varint(v) end

local function packed_doubles(field, list)
  local parts = {}
  for i, x in ipairs(list) do parts[i] = string.pack("<d", x) end
  return field_bytes(field, table.concat(parts))
end

--- tb.histogram_value(tag, values, {lo = 0, hi = 1, bins = 20}) -> encoded Summary.Value:
--- the histogram of values (a float32 tensor or a list of numbers) in bins equal bins over
--- [lo, hi] (values outside go to the end bins)
function tb.histogram_value(tag, values, opts)
  opts = opts or {}
  local lo, hi, bins = opts.lo or 0, opts.hi or 1, opts.bins or 20
  local list = type(values) == "table" and values or values:contiguous():view(-1):to_table()
  local counts = {}
  for b = 1, bins do counts[b] = 0 end
  local min, max, sum, sq = math.huge, -math.huge, 0, 0
  for _, x in ipairs(list) do
    local b = math.floor((x - lo) / (hi - lo) * bins) + 1
    b = math.max(1, math.min(bins, b))
    counts[b] = counts[b] + 1
    min, max, sum, sq = math.min(min, x), math.max(max, x), sum + x, sq + x * x
  end
  if #list == 0 then min, max = 0, 0 end
  local limits = {}
  for b = 1, bins do limits[b] = lo + (hi - lo) * b / bins end
  local histo = field_double(1, min) .. field_double(2, max) .. field_double(3, #list) .. field_double(4, sum)
                .. field_double(5, sq) .. packed_doubles(6, limits) .. packed_doubles(7, counts)
  return field_bytes(1, tag) .. field_bytes(5, histo)
end

--- tb.text_value(tag, text) -> encoded Summary.Value for TensorBoard's text plugin
function tb.text_value(tag, text)
  local metadata = field_bytes(1, field_bytes(1, "text"))        -- plugin_data{plugin_name}
  local tensor = field_varint(1, 7) .. field_bytes(2, "") .. field_bytes(8, text)   -- DT_STRING, shape [], value
  return field_bytes(1, tag) .. field_bytes(9, metadata) .. field_bytes(8, tensor)
end

return tb
