-- Run by tests/lua/dist_train_spec.lua under mpirun: recipes/train.lua whose rank 1 kills
-- itself (SIGKILL, as the kernel's OOM killer or a lost node would) at optimiser step K.
--   mpirun -np 2 build/umbra tests/lua/dist/kill_rank.lua K <train.lua flags>
local train = require "umbra.train"
local dist = require "umbra.dist"
local kill_at = math.tointeger(tonumber(table.remove(arg, 1)))
local make = train.Procedure
train.Procedure = function(...)
  local p = make(...)
  local step = getmetatable(p).step
  p.step = function(self, ...)
    if dist.rank() == 1 and self.step_count + 1 == kill_at then
      local f = assert(io.open("/proc/self/stat"))
      local pid = f:read("n")
      f:close()
      io.stderr:write("rank 1: killing myself at step ", kill_at, "\n")
      os.execute("kill -9 " .. pid)
    end
    return step(self, ...)
  end
  return p
end
dofile("recipes/train.lua")
