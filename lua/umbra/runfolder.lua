-- umbra.runfolder: keeping a run folder consistent across kills and resumes. lock(dir)
-- takes the folder for this process (a second training of the same folder is refused,
-- naming the holder's pid); clean_stale(dir) removes temporary files ("*.tmp.<pid>") left
-- by processes that died; trim(dir, epoch) drops what was logged after the checkpoint a
-- run resumes from: metrics.csv rows and TensorBoard events of later epochs.
local core = require "umbra.core"

local runfolder = {}

--- lock = runfolder.lock(dir) | nil, message; held until lock:release() or the process ends.
function runfolder.lock(dir)
  return core.lock_folder(dir)
end

--- runfolder.clean_stale(dir) -> {removed names}: "<name>.tmp.<pid>" of dead processes.
function runfolder.clean_stale(dir)
  local removed = {}
  for _, name in ipairs(core.list_dir(dir) or {}) do
    local pid = name:match("%.tmp%.(%d+)$")
    if pid and not core.process_alive(math.tointeger(tonumber(pid))) then
      if os.remove(dir .. "/" .. name) then removed[#removed + 1] = name end
    end
  end
  table.sort(removed)
  return removed
end

-- Replace path's content by text, atomically.
local function rewrite(path, text)
  local tmp = path .. ".tmp." .. core.getpid()
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  f:close()
  if not ok then os.remove(tmp); return nil, werr end
  return os.rename(tmp, path)
end

-- metrics.csv without the rows whose first column (the epoch) is above epoch.
local function trim_csv(path, epoch)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local kept, dropped, first = {}, 0, true
  for line in f:lines("L") do
    local e = not first and math.tointeger(tonumber(line:match("^([^,]*)")))
    if e and e > epoch then dropped = dropped + 1 else kept[#kept + 1] = line end
    first = false
  end
  f:close()
  if dropped > 0 then assert(rewrite(path, table.concat(kept))) end
  return dropped
end

local function varint(s, i)
  local v, shift = 0, 0
  repeat
    local b = s:byte(i)
    if not b or shift > 63 then return nil end
    v, i, shift = v | ((b & 0x7f) << shift), i + 1, shift + 7
  until b < 0x80
  return v, i
end

-- The step (field 2) of a serialised tensorflow.Event, or nil when it has none.
local function event_step(data)
  local i = 1
  while i <= #data do
    local key, wire
    key, i = varint(data, i)
    if not key then return nil end
    wire = key & 7
    if key >> 3 == 2 and wire == 0 then return (varint(data, i)) end
    if wire == 0 then i = select(2, varint(data, i))
    elseif wire == 1 then i = i + 8
    elseif wire == 5 then i = i + 4
    elseif wire == 2 then local n; n, i = varint(data, i); if not n then return nil end; i = i + n
    else return nil end
    if not i then return nil end
  end
  return nil
end

-- An event file without the records whose step is above epoch; records are copied whole,
-- so their CRCs stay valid. A damaged tail (a kill during a write) is dropped too.
local function trim_events(path, epoch)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  local kept, dropped, i = {}, 0, 1
  while i + 12 <= #s + 1 do
    local len = string.unpack("<i8", s, i)
    if len < 0 or len > #s or i + 15 + len > #s then break end
    local record = s:sub(i, i + 12 + len + 3)
    local step = event_step(s:sub(i + 12, i + 11 + len))
    if step and step > epoch then dropped = dropped + 1 else kept[#kept + 1] = record end
    i = i + 16 + len
  end
  if i <= #s then dropped = dropped + 1 end
  if dropped > 0 then assert(rewrite(path, table.concat(kept))) end
  return dropped
end

--- runfolder.trim(dir, epoch) -> rows, events: drop metrics.csv rows and TensorBoard
--- events (tb/train, tb/test) of epochs after `epoch` (TensorBoard steps are epochs).
function runfolder.trim(dir, epoch)
  local rows, events = trim_csv(dir .. "/metrics.csv", epoch), 0
  for _, sub in ipairs{"tb/train", "tb/test"} do
    for _, name in ipairs(core.list_dir(dir .. "/" .. sub) or {}) do
      if name:find("tfevents", 1, true) then events = events + trim_events(dir .. "/" .. sub .. "/" .. name, epoch) end
    end
  end
  return rows, events
end

return runfolder
