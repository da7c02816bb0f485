-- Helpers shared by the busted specs (loaded with dofile; not a spec itself): shell
-- quoting, running a command for its output and exit code, temporary folders, the
-- core's live bytes after full collections (for leak checks), and small MNIST-format
-- IDX fixtures.
local core = require "umbra.core"

local M = {}

function M.quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- run(cmd) -> output (stdout and stderr), exit code
function M.run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, rc = p:close()
  return out, rc
end

-- Every temporary folder or file of the specs, removed when the Lua state closes (busted
-- ends with os.exit(code, true)), so that a failing spec leaves nothing behind either. Kept
-- in package.loaded: each spec loads its own copy of these helpers, and the list must live
-- until the end of the run, not until a spec's copy is collected.
local created = package.loaded["umbra.test_tmp"]
if not created then
  created = setmetatable({}, {__gc = function(list)
    for _, path in ipairs(list) do os.execute("rm -rf " .. M.quote(path)) end
  end})
  package.loaded["umbra.test_tmp"] = created
end

local function mktemp(flags, tag)
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  local p = io.popen("mktemp " .. flags .. M.quote(base .. "/um_" .. (tag or "spec") .. "_XXXXXX"))
  local path = p:read("l")
  p:close()
  assert(path and path ~= "", "mktemp failed under " .. base)
  created[#created + 1] = path
  return path
end

--- tmpdir(tag) -> a new folder $TMPDIR/um_<tag>_XXXXXX (TMPDIR: /tmp when unset).
function M.tmpdir(tag) return mktemp("-d ", tag) end
--- tmpname(tag) -> a new empty file $TMPDIR/um_<tag>_XXXXXX: Lua's own tmpname ignores TMPDIR.
function M.tmpname(tag) return mktemp("", tag) end

function M.settle()
  collectgarbage("collect")
  collectgarbage("collect")
  return core.live_bytes()
end

--- write_idx(dir, prefix, n, g): n 28x28 images with labels (i-1) % 10 as the IDX pair
--- prefix-images-idx3-ubyte / prefix-labels-idx1-ubyte; class y is a bright vertical
--- stripe at columns 3y..3y+2 plus noise from generator g, so a model can learn it.
function M.write_idx(dir, prefix, n, g)
  local f = assert(io.open(dir .. "/" .. prefix .. "-images-idx3-ubyte", "wb"))
  f:write(string.pack(">I4I4I4I4", 0x803, n, 28, 28))
  local labels = {}
  for i = 1, n do
    local y = (i - 1) % 10
    labels[i] = string.char(y)
    local px = {}
    for p = 1, 784 do
      local on = ((p - 1) % 28) // 3 == y
      px[p] = string.char(on and 200 + g:random(55) or g:random(40))
    end
    f:write(table.concat(px))
  end
  f:close()
  f = assert(io.open(dir .. "/" .. prefix .. "-labels-idx1-ubyte", "wb"))
  f:write(string.pack(">I4I4", 0x801, n), table.concat(labels))
  f:close()
end

--- mpirun(n) -> the command prefix that starts n ranks of build/umbra on this machine:
--- allowed as root (CI), more ranks than cores, no core binding (threads are the
--- recipes' business), shared-memory copies without ptrace (containers forbid it),
--- waiting ranks yielding their core (2 cores shared by ranks and other work).
function M.mpirun(n)
   local build = os.getenv("UMBRA_BUILD") or "build"
   -- sanitizer builds (make asan): Open MPI keeps its allocations until exit by design, in
   -- components it unloads first, so LeakSanitizer can neither name nor suppress them;
   -- the ranks check memory errors, leaks are checked in the one-process tests
   local sanitizer = os.getenv("ASAN") == "1" and "ASAN_OPTIONS=detect_leaks=0 " or ""
   return sanitizer .. string.format("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                        .. "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1 "
                        .. "mpirun -np %d --oversubscribe --bind-to none %s/umbra", n, build)
end

return M
