-- umbra.log: what a run writes while it trains: a log file mirrored on the terminal,
-- metrics.csv (one row per epoch), TensorBoard scalars (written by umbra itself, see
-- core/io/tbevents.c) under tb/train and tb/test, and a progress bar with ETA when stdout is
-- a terminal (plain lines otherwise).
local core = require "umbra.core"

local log = {}

local Run = {}
Run.__index = Run

local function mkdir(path)
  local ok = os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "'")
  if ok ~= true and ok ~= 0 then error("log: cannot create folder " .. path, 3) end
end

local function is_tty()
  local ok = os.execute("test -t 1")
  return ok == true or ok == 0
end

--- run = log.open(dir, {columns = {...}, append = bool}): dir is created. With append
--- (resuming), existing files are kept and extended.
function log.open(dir, opts)
  opts = opts or {}
  mkdir(dir)
  mkdir(dir .. "/tb/train")
  mkdir(dir .. "/tb/test")
  local self = setmetatable({dir = dir, columns = opts.columns, tty = is_tty(), t0 = os.time()}, Run)
  self.logf = assert(io.open(dir .. "/log", opts.append and "a" or "w"))
  local csv_path = dir .. "/metrics.csv"
  local exists = io.open(csv_path) ~= nil
  self.csv = assert(io.open(csv_path, opts.append and "a" or "w"))
  if self.columns and not (opts.append and exists) then
    self.csv:write(table.concat(self.columns, ","), "\n")
    self.csv:flush()
  end
  self.tb_train = assert(core.tb_open(dir .. "/tb/train"))
  self.tb_test = assert(core.tb_open(dir .. "/tb/test"))
  return self
end

--- Print a line and append it to the log, with a time stamp in the file.
function Run:print(fmt, ...)
  local line = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  if self.bar_shown then io.write("\n"); self.bar_shown = false end
  print(line)
  self.logf:write(os.date("%Y-%m-%d %H:%M:%S "), line, "\n")
  self.logf:flush()
end

--- Append one metrics row (a table keyed by column name) to metrics.csv and write the
--- numeric ones as TensorBoard scalars at `step` (keys "test_*" go to the test writer).
function Run:metrics(row, step)
  local cells = {}
  for i, c in ipairs(self.columns) do
    local v = row[c]
    cells[i] = v == nil and "" or (type(v) == "number" and string.format("%.6g", v) or tostring(v))
  end
  self.csv:write(table.concat(cells, ","), "\n")
  self.csv:flush()
  for k, v in pairs(row) do
    if type(v) == "number" and k ~= "epoch" then
      local test = k:match("^test_(.*)")
      if test then self.tb_test:scalar("main/" .. test, step, v)
      else self.tb_train:scalar("main/" .. k:gsub("^train_", ""), step, v) end
    end
  end
end

--- Progress within an epoch: a bar with ETA on a terminal, a plain line every `every`
--- steps otherwise.
function Run:progress(done, total, text, every)
  local elapsed = os.time() - (self.epoch_t0 or self.t0)
  local eta = done > 0 and elapsed * (total - done) / done or 0
  if self.tty then
    local width = 30
    local filled = math.floor(width * done / math.max(total, 1))
    io.write(string.format("\r[%s%s] %d/%d eta %ds %s", string.rep("#", filled), string.rep(".", width - filled),
                           done, total, math.floor(eta), text or ""))
    io.flush()
    self.bar_shown = true
  elseif done % (every or 100) == 0 or done == total then
    print(string.format("  %d/%d eta %ds %s", done, total, math.floor(eta), text or ""))
  end
end

function Run:start_epoch() self.epoch_t0 = os.time() end

function Run:close()
  if self.bar_shown then io.write("\n") end
  self.logf:close()
  self.csv:close()
  self.tb_train:close()
  self.tb_test:close()
end
Run.__close = Run.close

return log
