-- umbra.cuda: the GPU from Lua. Tensors move with t:cuda(), t:cpu() or t:to("cuda"),
-- modules with model:to("cuda") (in place; create the optimiser after the move). Every
-- op of a tensor runs on its device; mixing devices in one call is an error.
--   umbra.cuda.is_available()   true when the CUDA backend is built in and a device exists
--   umbra.cuda.why_unavailable() nil when available, else why not (no library, or no device)
--   umbra.cuda.device_count()   0 without a device
--   umbra.cuda.device_name()    e.g. "NVIDIA H200", or nil
--   umbra.cuda.synchronize()    wait for queued GPU work (for timings); no-op on the CPU
--   umbra.cuda.memory()         {in_use =, cached =, peak =} device bytes of the allocator
--   umbra.cuda.empty_cache()    give cached device memory back to the driver
--   umbra.cuda.device(name)     "cuda" or "cpu" checked: errors when "cuda" is not there
local core = require "umbra.core"

local C = core.cuda_core
local cuda = {}

function cuda.is_available() return C.is_available() end
function cuda.why_unavailable() return C.why_unavailable() end
function cuda.device_count() return C.device_count() end
function cuda.device_name() return C.device_name() end
function cuda.synchronize() return C.synchronize() end
function cuda.memory() return C.memory() end
function cuda.empty_cache() return C.empty_cache() end

--- A device name for --device options: "cpu", or "cuda" when available (else an error).
function cuda.device(name)
  name = name or "cpu"
  if name == "cpu" then return name end
  if name ~= "cuda" then error(string.format("unknown device '%s' (expected cpu or cuda)", tostring(name)), 2) end
  if not C.is_available() then
    error("device 'cuda' requested but no CUDA device is available (" .. C.why_unavailable() .. ")", 2)
  end
  return name
end

return cuda
