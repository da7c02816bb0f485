-- Run folders after kills and misuse (issue "trust under faults", items 3-5 and 11): the
-- folder lock refuses a second holder naming the first one's pid; temporary files of dead
-- processes are removed; resuming drops metrics rows and TensorBoard events logged after
-- the checkpoint and rewrites a missing periodic checkpoint; bad numeric flags, a broken
-- training set and a config.lua that never ends are refused before any work.
local core = require "umbra.core"
local runfolder = require "umbra.runfolder"
local h = dofile("tests/lua/helpers.lua")
local read_events = dofile("tests/lua/tbreader.lua").read_events
local build = os.getenv("UMBRA_BUILD") or "build"

local function lines(path)
  local out = {}
  for l in io.lines(path) do out[#out + 1] = l end
  return out
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("umbra.runfolder", function()
  local dir = h.tmpdir("runfolder")
  teardown(function() os.execute("rm -rf " .. h.quote(dir)) end)

  it("locks a folder for one process and names the holder to others", function()
    local lock = assert(runfolder.lock(dir))
    local out = h.run(string.format("%s/umbra -e %s", build,
                                    h.quote("print(require('umbra.runfolder').lock('" .. dir .. "'))")))
    assert.matches("nil\trun folder " .. dir .. " is in use by process " .. core.getpid(), out, 1, true)
    local again, msg = runfolder.lock(dir)   -- another descriptor in this process also waits
    assert.is_nil(again)
    assert.matches("in use by process " .. core.getpid(), msg, 1, true)
    lock:release()
    out = h.run(string.format("%s/umbra -e %s", build,
                              h.quote("print(require('umbra.runfolder').lock('" .. dir .. "'))")))
    assert.matches("^umbra.folder_lock", out)
  end)

  it("removes temporary files of dead processes only", function()
    local dead = 4000000
    while core.process_alive(dead) do dead = dead + 1 end
    local mine = string.format("checkpoint.h5.tmp.%d", core.getpid())
    for _, name in ipairs{"checkpoint.h5.tmp." .. dead, mine, "checkpoint.h5"} do
      assert(io.open(dir .. "/" .. name, "w")):close()
    end
    assert.are.same({"checkpoint.h5.tmp." .. dead}, runfolder.clean_stale(dir))
    assert.is_true(exists(dir .. "/" .. mine))
    assert.is_true(exists(dir .. "/checkpoint.h5"))
    os.remove(dir .. "/" .. mine)
  end)

  it("drops metrics rows and TensorBoard events after an epoch", function()
    local f = assert(io.open(dir .. "/metrics.csv", "w"))
    f:write("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n3,0.3\n")
    f:close()
    os.execute("mkdir -p " .. h.quote(dir .. "/tb/train"))
    local w = assert(core.tb_open(dir .. "/tb/train"))
    for step = 1, 3 do w:scalar("main/loss", step, step / 10) end
    w:close()
    local rows, events = runfolder.trim(dir, 2)
    assert.are.equal(2, rows)
    assert.are.equal(1, events)
    assert.are.same({"epoch,loss", "1,0.5", "2,0.4"}, lines(dir .. "/metrics.csv"))
    local p = io.popen("ls " .. h.quote(dir) .. "/tb/train/events.out.tfevents.*")
    local file = p:read("l"); p:close()
    local steps = {}
    for _, ev in ipairs(read_events(file)) do if ev[2] and ev[2][1] > 0 then steps[#steps + 1] = ev[2][1] end end
    assert.are.same({1, 2}, steps)   -- CRCs still valid: read_events checks them
  end)
end)

describe("recipes/train.lua under faults", function()
  local data_dir = h.tmpdir("rfdata")
  local runs = h.tmpdir("rfruns")
  os.execute("mkdir -p " .. data_dir .. "/mnist")
  local g = require("umbra").Generator(5)
  h.write_idx(data_dir .. "/mnist", "train", 128, g)
  h.write_idx(data_dir .. "/mnist", "t10k", 64, g)
  teardown(function() os.execute("rm -rf " .. h.quote(data_dir) .. " " .. h.quote(runs)) end)

  local function train(extra)
    return h.run(string.format("%s/umbra recipes/train.lua --dataset mnist --data_dir %s --n_train 128 --n_test 64 "
                               .. "--batch_size 64 --threads 1 --runs_dir %s %s", build, data_dir, runs, extra))
  end
  local function run_dir(exp)
    local p = io.popen("ls -d " .. runs .. "/" .. exp .. "/*/ 2>/dev/null")
    local d = p:read("l")
    p:close()
    return d and d:gsub("/$", "")
  end

  it("refuses every bad numeric flag before any work", function()
    for _, bad in ipairs{{"--save_every 0", "--save_every must be an integer >= 1, got 0"},
                         {"--batch_size 0", "--batch_size must be an integer >= 1, got 0"},
                         {"--n_epochs 0", "--n_epochs must be an integer >= 1"},
                         {"--n_epochs 1.5", "--n_epochs must be an integer"},
                         {"--lr=-1", "--lr must be a number >= 0"}, {"--lr 0", "--lr must be > 0"},
                         {"--frac_perm 2", "--frac_perm must be a number >= 0 and <= 1, got 2"},
                         {"--threads 0", "--threads must be an integer >= 1"},
                         {"--pgd_eps=-0.5", "--pgd_eps must be a number >= 0"},
                         {"--lmbd 1e999", "--lmbd must be a number"}} do
      local out, rc = train(bad[1] .. " --exp_name flags")
      assert.are_not.equal(0, rc)
      assert.matches(bad[2], out, 1, true)
    end
    assert.is_nil(run_dir("flags"))
  end)

  it("passes on the reader's message for a broken training set", function()
    local broken = h.tmpdir("rfbroken")
    os.execute("mkdir -p " .. broken .. "/mnist && cp " .. data_dir .. "/mnist/* " .. broken .. "/mnist/")
    local f = assert(io.open(broken .. "/mnist/train-images-idx3-ubyte", "r+b"))
    f:write(string.pack(">I4I4", 0x803, 99999))   -- more images than the file holds
    f:close()
    local out, rc = h.run(string.format("%s/umbra recipes/train.lua --dataset mnist --data_dir %s --threads 1 "
                                        .. "--runs_dir %s", build, broken, runs))
    os.execute("rm -rf " .. h.quote(broken))
    assert.are_not.equal(0, rc)
    assert.matches("train-images-idx3-ubyte", out, 1, true)
    assert.is_nil(out:find("cannot load the training set", 1, true))
  end)

  it("resumes cleanly after a kill's leftovers, once at a time", function()
    local out, rc = train("--n_epochs 3 --save_every 1 --stop_epoch 2 --exp_name killed")
    assert.are.equal(0, rc, out)
    local dir = assert(run_dir("killed"))
    -- what a kill -9 between the metrics row of epoch 3 and its checkpoint leaves
    local rows = lines(dir .. "/metrics.csv")
    local f = assert(io.open(dir .. "/metrics.csv", "a"))
    f:write((rows[3]:gsub("^2,", "3,")), "\n")
    f:close()
    assert(os.remove(dir .. "/checkpoint-2.h5"))
    local dead = 4000000
    while core.process_alive(dead) do dead = dead + 1 end
    assert(io.open(dir .. "/checkpoint.h5.tmp." .. dead, "w")):close()
    -- a second resume while the folder is held is refused, naming the holder
    local lock = assert(runfolder.lock(dir))
    out, rc = h.run(string.format("%s/umbra recipes/train.lua --resume %s --data_dir %s --threads 1", build, dir,
                                  data_dir))
    assert.are_not.equal(0, rc)
    assert.matches("is in use by process " .. core.getpid(), out, 1, true)
    lock:release()
    out, rc = h.run(string.format("%s/umbra recipes/train.lua --resume %s --data_dir %s --threads 1", build, dir,
                                  data_dir))
    assert.are.equal(0, rc, out)
    local epochs = {}
    for i, l in ipairs(lines(dir .. "/metrics.csv")) do if i > 1 then epochs[#epochs + 1] = l:match("^(%d+),") end end
    assert.are.same({"1", "2", "3"}, epochs)
    assert.is_true(exists(dir .. "/checkpoint-2.h5"))
    assert.is_false(exists(dir .. "/checkpoint.h5.tmp." .. dead))
    -- each epoch wrote the same scalars once: epoch 3's as many as epoch 1's
    local count = {}
    local p = io.popen("ls " .. h.quote(dir) .. "/tb/test/events.out.tfevents.*")
    for file in p:lines() do
      for _, ev in ipairs(read_events(file)) do
        if ev[2] then count[ev[2][1]] = (count[ev[2][1]] or 0) + 1 end
      end
    end
    p:close()
    assert.is_true(count[1] > 0)
    assert.are.equal(count[1], count[3])
  end)

  it("refuses a config.lua that never ends", function()
    local dir = assert(run_dir("killed"))
    local f = assert(io.open(dir .. "/config.lua", "w"))
    f:write("while true do end\n")
    f:close()
    local out, rc = h.run(string.format("timeout 60 %s/umbra recipes/train.lua --resume %s --data_dir %s", build, dir,
                                        data_dir))
    assert.are.equal(1, rc, out)
    assert.matches("runs more than 100000 instructions", out, 1, true)
  end)
end)
