-- The `umbra` module: everything from the C module umbra.core (tensors, generators,
-- threads, allocator counters) plus the pure-Lua submodules (umbra.nn, umbra.optim, ...),
-- each loaded on first use, so a missing or broken one only fails where it is used.
local core = require "umbra.core"

local umbra = {core = core}
for name, value in pairs(core) do umbra[name] = value end

-- umbra.<name> for a submodule umbra.<name> that require can find (on package.path or
-- in package.preload): required once, then cached in the table; other unknown names
-- stay nil, as for any Lua table.
local function lazy_submodule(self, name)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then return nil end
  local modname = "umbra." .. name
  if not package.loaded[modname] and not package.preload[modname]
    and not package.searchpath(modname, package.path) then
    return nil
  end
  local module = require(modname)
  rawset(self, name, module)
  return module
end

--- umbra.help([obj_or_name]) prints the documentation of a function, module, model,
--- tensor or name ("nn.Linear", "backward"); umbra.help() lists the modules
function umbra.help(x) print(require("umbra.docs").help(x)) end

return setmetatable(umbra, {__index = lazy_submodule})
