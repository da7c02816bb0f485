-- TensorBoard event files: read back with a reader written here (TFRecord framing, masked
-- CRC32C computed in pure Lua, the Event protocol buffer decoded by hand).
local core = require "umbra.core"

local reader = dofile("tests/lua/tbreader.lua")
local h = dofile("tests/lua/helpers.lua")
local read_events, fields, crc32c = reader.read_events, reader.fields, reader.crc32c

describe("tensorboard events", function()
  it("are framed records with masked CRC32C around Event protos", function()
    assert.are.equal(0xE3069283, crc32c("123456789"))
    local dir = h.tmpdir("tblog")
    local w = assert(core.tb_open(dir))
    w:scalar("main/error", 3, 0.25, 1000.5)
    w:scalar("main/loss_total", 4, 1.5)
    local path = w:path()
    w:close()
    local ev = read_events(path)
    assert.are.equal(3, #ev)
    assert.are.equal("brain.Event:2", ev[1][3][1])
    assert.are.equal(3, ev[2][2][1])
    assert.are.equal(1000.5, ev[2][1][1])
    local value = fields(fields(ev[2][5][1])[1][1])
    assert.are.equal("main/error", value[1][1])
    assert.are.equal(0.25, value[2][1])
    local v2 = fields(fields(ev[3][5][1])[1][1])
    assert.are.equal("main/loss_total", v2[1][1])
    assert.are.equal(1.5, v2[2][1])
    os.execute("rm -rf " .. dir)
  end)

  it("refuses a folder that does not exist", function()
    local w, err = core.tb_open("/nonexistent/folder")
    assert.is_nil(w)
    assert.matches("cannot create /nonexistent/folder/events.out.tfevents", err, 1, true)
  end)
end)

