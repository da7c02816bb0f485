-- umbra.log: what a run writes while it trains: a log file mirrored on the terminal,
-- metrics.csv (one row per epoch), TensorBoard scalars (written by umbra itself, see
-- core/io/tbevents.c) under tb/train and tb/test, and progress with the time left to the end
-- of the run: a bar when stdout is a terminal, whole lines every few seconds otherwise.
local core = require "umbra.core"

local log = {}

local Run = {}
Run.__index = Run

local function mkdir(path)
  local ok = os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "'")
  if ok ~= true and ok ~= 0 then error("log: cannot create folder " .. path, 3) end
end

local function is_tty(fd)
  local ok = os.execute("test -t " .. (fd or 1))
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
  if self.bar_shown then io.write("\n"); self.bar_shown = false; self.bar.shown = false end
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

local function clock() return core.clock() end

local function duration(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then return string.format("%dh%02dm", seconds // 3600, seconds % 3600 // 60) end
  if seconds >= 60 then return string.format("%dm%02ds", seconds // 60, seconds % 60) end
  return string.format("%ds", seconds)
end
log.duration = duration

local Progress = {}
Progress.__index = Progress

--- p = log.progress(total, {label = "", every = 10, stream = io.stdout | io.stderr,
---                          tty = (that stream is a terminal)}):
--- p:update(done [, text]) shows done/total with the time left to the end (from the pace
--- so far): on a terminal a bar redrawn in place, otherwise a whole line at the first
--- update, then every `every` seconds and at the end (no carriage returns in a pipe or
--- file). p:finish() ends the bar's line.
function log.progress(total, opts)
  opts = opts or {}
  local out = opts.stream or io.stdout
  local tty = opts.tty
  if tty == nil then tty = is_tty(out == io.stderr and 2 or 1) end
  return setmetatable({total = math.max(total, 1), label = opts.label or "", every = opts.every or 10,
                       tty = tty, out = out, t0 = clock(), last = nil, shown = false}, Progress)
end

function Progress:line(done, text)
  local elapsed = clock() - self.t0
  local eta = done > 0 and elapsed * (self.total - done) / done or nil
  return string.format("%s%d/%d (%d%%) %s elapsed, %s left%s", self.label ~= "" and self.label .. " " or "",
                       done, self.total, math.floor(100 * done / self.total), duration(elapsed),
                       eta and duration(eta) or "?", text and text ~= "" and "  " .. text or "")
end

function Progress:update(done, text)
  local now = clock()
  if self.tty then
    if self.last and now - self.last < 0.2 and done < self.total then return end
    local width = 24
    local filled = math.floor(width * math.min(done, self.total) / self.total)
    self.out:write("\r\27[K[", string.rep("#", filled), string.rep(".", width - filled), "] ", self:line(done, text))
    self.out:flush()
    self.shown = true
  else
    if self.last and now - self.last < self.every and done < self.total then return end
    self.out:write(self:line(done, text), "\n")
    self.out:flush()
  end
  self.last = now
end

function Progress:finish()
  if self.shown then self.out:write("\n"); self.out:flush() end
  self.shown = false
end

--- Progress of the run: done and total count the optimiser steps of this invocation
--- (so the time left runs to the end of the run, --max_steps and --stop_epoch included).
function Run:progress(done, total, text, every)
  if not self.bar or self.bar.total ~= math.max(total, 1) then self:begin_progress(total, every) end
  self.bar:update(done, text)
  self.bar_shown = self.bar.shown
end

--- run:begin_progress(total [, every]) starts the clock of the run's progress (before its
--- first step, so that the time left counts that step too)
function Run:begin_progress(total, every)
  self.bar = log.progress(total, {tty = self.tty, every = every})
end

--- run:step_scalars(step, {name = number, ...}): TensorBoard scalars "step/<name>" of one
--- optimiser step (the per-epoch ones are "main/<name>")
function Run:step_scalars(step, values)
  for k, v in pairs(values) do
    if type(v) == "number" then self.tb_train:scalar("step/" .. k, step, v) end
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
