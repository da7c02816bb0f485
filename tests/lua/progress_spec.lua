-- Progress (umbra.log.progress): a bar redrawn in place on a terminal, whole lines when
-- piped (the first at once, then every few seconds, and the last), with the time left to
-- the end; TensorBoard histograms and text (umbra.tb) decoded back from an event file.
local log = require "umbra.log"
local tb = require "umbra.tb"
local umbra = require "umbra"
local tbreader = dofile("tests/lua/tbreader.lua")
local helpers = dofile("tests/lua/helpers.lua")

-- A stream that keeps what is written.
local function sink()
  local parts = {}
  return {write = function(self, ...) for _, s in ipairs{...} do parts[#parts + 1] = s end return self end,
          flush = function() end, text = function() return table.concat(parts) end}
end

describe("log.progress", function()
  it("writes whole lines when not on a terminal: the first at once, then by time, and the last", function()
    local out = sink()
    local p = log.progress(100, {label = "eval", stream = out, tty = false, every = 3600})
    for i = 1, 100 do p:update(i, "x") end
    p:finish()
    local text = out.text()
    assert.is_nil(text:find("\r", 1, true))
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(2, #lines)
    assert.matches("^eval 1/100 %(1%%%) %d+s elapsed, %S+ left  x$", lines[1])
    assert.matches("^eval 100/100 %(100%%%) %d+s elapsed, 0s left  x$", lines[2])
  end)

  it("redraws a bar in place on a terminal and ends its line", function()
    local out = sink()
    local p = log.progress(4, {stream = out, tty = true})
    p:update(1)
    p:update(4)
    p:finish()
    local text = out.text()
    assert.matches("^\r\27%[K%[######%.+%] 1/4", text)
    assert.matches("\r\27%[K%[#+%] 4/4 %(100%%%)", text)
    assert.equal("\n", text:sub(-1))
  end)
end)

describe("umbra.tb", function()
  it("writes histograms and text that decode as TensorBoard's protos", function()
    local dir = helpers.tmpdir("progress")
    os.execute("mkdir -p " .. dir)
    local w = assert(umbra.core.tb_open(dir))
    w:value(7, tb.histogram_value("confidence/clean", umbra.tensor({0.1, 0.96, 0.99, 1.0}), {bins = 10}))
    w:value(0, tb.text_value("config", "| lr | 0.1 |"))
    local path = w:path()
    w:close()
    local ev = tbreader.read_events(path)
    os.execute("rm -rf " .. dir)
    assert.equal(3, #ev)
    local F = tbreader.fields
    local value = F(F(ev[2][5][1])[1][1])
    assert.equal(7, ev[2][2][1])
    assert.equal("confidence/clean", value[1][1])
    local h = F(value[5][1])
    assert.near(0.1, h[1][1], 1e-6)        -- min
    assert.equal(1.0, h[2][1])             -- max
    assert.equal(4, h[3][1])               -- num
    local counts = {string.unpack(string.rep("<d", 10), h[7][1])}
    assert.same({0, 1, 0, 0, 0, 0, 0, 0, 0, 3}, {table.unpack(counts, 1, 10)})
    local text = F(F(ev[3][5][1])[1][1])
    assert.equal("config", text[1][1])
    assert.equal("text", F(F(text[9][1])[1][1])[1][1])   -- metadata.plugin_data.plugin_name
    assert.equal("| lr | 0.1 |", F(text[8][1])[8][1])   -- tensor.string_val
  end)
end)
