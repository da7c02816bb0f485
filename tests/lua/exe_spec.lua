-- The umbra executable: --version, -h, -e, scripts with arguments (the global `arg` as in
-- lua), stdin, the REPL's printing of expression values, errors with a traceback and
-- exit status 1, and finding the library from another working directory.
local build = os.getenv("UMBRA_BUILD") or "build"
local h = dofile("tests/lua/helpers.lua")

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local p = io.popen("pwd")
  local pwd = p:read("l")
  p:close()
  return pwd .. "/" .. path
end

local exe = absolute(build .. "/umbra")

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Run a shell command line; returns its stdout+stderr and exit status.
local function run(cmdline)
  local p = io.popen(cmdline .. " 2>&1; echo \"<rc=$?>\"")
  local out = p:read("a")
  p:close()
  local body, rc = out:match("^(.*)<rc=(%d+)>\n$")
  return body, tonumber(rc)
end

local function temp_script(code)
  local name = h.tmpname("exe")
  local f = assert(io.open(name, "w"))
  f:write(code)
  f:close()
  return name
end

describe("the umbra executable", function()
  it("prints its version", function()
    local out, rc = run(quote(exe) .. " --version")
    assert.are.equal("umbra 0.1.0 (Lua 5.4)\n", out)
    assert.are.equal(0, rc)
    assert.are.equal("umbra 0.1.0 (Lua 5.4)\n", (run(quote(exe) .. " -v")))
  end)

  it("prints usage for -h and for a bad option", function()
    local out, rc = run(quote(exe) .. " -h")
    assert.are.equal(0, rc)
    assert.is_truthy(out:find("usage: ", 1, true))
    assert.is_truthy(out:find("-e stat", 1, true))
    out, rc = run(quote(exe) .. " --bogus")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("unrecognized option '--bogus'", 1, true))
  end)

  it("runs -e code with the library on its path", function()
    local out, rc = run(quote(exe) .. " -e " .. quote('print(require("umbra").tensor{1, 2}:sum())'))
    assert.are.equal("3.0\n", out)
    assert.are.equal(0, rc)
    out = run(quote(exe) .. " -e 'x = 2' -e 'print(x * 21)'")
    assert.are.equal("42\n", out)
  end)

  it("runs a script with its arguments in arg and ...", function()
    local script = temp_script('print(arg[0], #arg, arg[1], arg[2], select("#", ...), ...)\n' ..
                               'print(arg[-1])\n')
    local out, rc = run(quote(exe) .. " " .. quote(script) .. " alpha 'b c'")
    os.remove(script)
    assert.are.equal(script .. "\t2\talpha\tb c\t2\talpha\tb c\n" .. exe .. "\n", out)
    assert.are.equal(0, rc)
  end)

  it("reports an error with a traceback and exit status 1", function()
    local script = temp_script('local function f() error("boom") end\nf()\n')
    local out, rc = run(quote(exe) .. " " .. quote(script))
    os.remove(script)
    assert.are.equal(1, rc)
    assert.is_truthy(out:find(":1: boom", 1, true))
    assert.is_truthy(out:find("stack traceback:", 1, true))
    out, rc = run(quote(exe) .. " -e 'error(\"bad\")'")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("bad", 1, true))
    out, rc = run(quote(exe) .. " /nonexistent/script.lua")
    assert.are.equal(1, rc)
    assert.is_truthy(out:find("cannot open /nonexistent/script.lua", 1, true))
  end)

  it("exits with the status given to os.exit", function()
    local _, rc = run(quote(exe) .. " -e 'os.exit(3)'")
    assert.are.equal(3, rc)
  end)

  it("runs stdin as a script when it is not a terminal", function()
    local out, rc = run("echo 'print(6 * 7)' | " .. quote(exe))
    assert.are.equal("42\n", out)
    assert.are.equal(0, rc)
    out = run("echo 'print(...)' | " .. quote(exe) .. " - x y")
    assert.are.equal("x\ty\n", out)
  end)

  it("prints expression values in the REPL, across continued lines", function()
    local input = "1 + 1\nreturn 'a', 2\nx = {\n  10,\n}\nx[1] * 3\numbra.tensor{{1, 2}}\n"
    local out, rc = run("printf %s " .. quote(input) .. " | " .. quote(exe) .. " -i")
    assert.are.equal(0, rc)
    assert.are.equal("> 2\n> a\t2\n> >> >> > 30\n" ..
                     ">  1.0000  2.0000\n[umbra.Tensor float32 of size 1x2]\n> \n", out)
  end)

  it("keeps going in the REPL after an error", function()
    local out = run("printf 'error(\"oops\")\\nprint(5)\\n' | " .. quote(exe) .. " -i")
    assert.is_truthy(out:find("oops", 1, true))
    assert.is_truthy(out:find("\n5\n", 1, true) or out:find("> 5\n", 1, true))
  end)

  it("finds the library and the repository modules from any directory", function()
    local out = run("cd / && " .. quote(exe) .. " -e " ..
                    quote('require "umbra"; print(package.searchpath("umbra", package.path) ~= nil)'))
    assert.are.equal("true\n", out)
    local root = exe:match("^(.*)/[^/]+/[^/]+$")
    out = run("cd / && " .. quote(exe) .. " -e " ..
              quote('print(package.path:sub(1, ' .. #root + 11 .. '))'))
    assert.are.equal(root .. "/lua/?.lua;\n", out)
  end)

  it("requires a module into a global with -l", function()
    local out = run(quote(exe) .. " -l u=umbra -e 'print(u.tensor{4}:item())' </dev/null")
    assert.are.equal("4.0\n", out)
  end)

  it("sets how the thread pools wait, keeping what the user set", function()
    local show = quote('print(os.getenv("OMP_WAIT_POLICY"), os.getenv("GOMP_SPINCOUNT"), ' ..
                       'os.getenv("OPENBLAS_THREAD_TIMEOUT"))')
    local clean = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT "
    local script = temp_script('print(os.getenv("GOMP_SPINCOUNT"), os.getenv("OPENBLAS_THREAD_TIMEOUT"), ...)')
    assert.are.equal("10000\t16\ta\tb c\n", run(clean .. quote(exe) .. " " .. script .. " a 'b c'"))
    os.remove(script)
    assert.are.equal("active\tnil\t7\n",
                     run(clean .. "OMP_WAIT_POLICY=active OPENBLAS_THREAD_TIMEOUT=7 " .. quote(exe) .. " -e " .. show))
    assert.are.equal("nil\t1000\t16\n", run(clean .. "GOMP_SPINCOUNT=1000 " .. quote(exe) .. " -e " .. show))
  end)

  it("keeps OpenMP's thread binding across that restart", function()
    local cpus = tonumber((run("nproc")))
    if cpus < 2 then
      pending("one CPU: nothing to spread two threads over")
      return
    end
    -- OpenMP binds the first thread before main; the restarted program must still see
    -- every CPU, or all its threads land on the first one
    local work = quote('local u = require "umbra"; u.set_num_threads(2); ' ..
                       'local x = u.rand({1024, 1024}, u.Generator(1)); x:add(x)')
    local out = run("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT -u OMP_PLACES " ..
                    "OMP_PROC_BIND=true OMP_DISPLAY_AFFINITY=true " .. quote(exe) .. " -e " .. work)
    local seen, distinct = {}, 0
    for cpu in out:gmatch("affinity (%S+)") do
      if not seen[cpu] then seen[cpu], distinct = true, distinct + 1 end
    end
    assert.are.equal(2, distinct, out)
  end)
end)
