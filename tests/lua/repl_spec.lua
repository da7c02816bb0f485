-- The REPL through a pseudo-terminal (tests/lua/pty_session.py types the keys): Tab
-- completion of methods, children and umbra.*, tables printed readably, Ctrl-C clearing
-- the line (also mid-statement and while code runs) with the state kept, Ctrl-D quitting,
-- and the global `umbra` outside the REPL too.
local build = os.getenv("UMBRA_BUILD") or "build"
local h = dofile("tests/lua/helpers.lua")

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return os.getenv("PWD") .. "/" .. path
end
local exe = absolute(build .. "/umbra")

-- Type the bursts of keys (one per list entry) into a REPL; returns what the terminal
-- showed, without readline's bracketed-paste switches and carriage returns.
local function session(keys)
  local home = h.tmpdir("repl")
  local f = assert(io.open(home .. "/keys", "w"))
  f:write(table.concat(keys, "\n"), "\n")
  f:close()
  local out = h.run("HOME=" .. home .. " python3 tests/lua/pty_session.py " .. h.quote(exe) .. " < " .. home .. "/keys")
  os.execute("rm -rf " .. h.quote(home))
  return (out:gsub("\27%[%?2004[hl]", ""):gsub("\r", ""))
end

local has_python = os.execute("command -v python3 >/dev/null 2>&1")

describe("the REPL on a terminal", function()
  if not has_python then
    it("needs python3 for its pseudo-terminal", function() pending("python3 missing") end)
    return
  end

  it("completes methods, children, parameters and umbra.*, and prints tables readably", function()
    local out = session{
      [[x = umbra.ones(4, 5)\r]],
      [[x:siz\t()\r]],
      [[m = umbra.nn.Sequential{{"conv1", umbra.nn.Linear(2, 3, {seed = 1})}}\r]],
      [[m.con\t.bi\t:numel()\r]],
      [[umbra.nn.CrossEn\t == umbra.nn.CrossEntropy\r]],
      [[{a = 1, 2, "x", t = {1}}\r]],
      [[\x04]],
    }
    assert.matches("> x:size()\n{4, 5}\n", out, 1, true)
    assert.matches("> m.conv1.bias:numel()\n3\n", out, 1, true)
    assert.matches("> umbra.nn.CrossEntropy == umbra.nn.CrossEntropy\ntrue\n", out, 1, true)
    assert.matches('{2, "x", a = 1, t = {1}}', out, 1, true)
    assert.matches("<exit 0>", out, 1, true)
  end)

  it("clears the line on Ctrl-C and keeps the state; Ctrl-D quits", function()
    local out = session{
      [[kept = 41\r]],
      [[half typed\x03]],
      [[kept + 1\r]],
      [[unfinished(\r]],
      [[\x03]],
      [[kept + 2\r]],
      [[while true do end\r]],
      [[\x03]],
      [[kept + 3\r]],
      [[\x04]],
    }
    assert.matches("> kept + 1\n42\n", out, 1, true)
    assert.matches(">> ^C\n> kept + 2\n43\n", out, 1, true)
    assert.matches("interrupted!", out, 1, true)
    assert.matches("> kept + 3\n44\n", out, 1, true)
    assert.matches("<exit 0>\n$", out)
  end)

  it("suggests the method meant for a misspelt one", function()
    local out = session{[[umbra.nn.Linear(2, 2, {seed = 1}):forwrad(umbra.ones(1, 2))\r]], [[\x04]]}
    assert.matches("no method, child or parameter 'forwrad' on umbra.Module (Linear) (did you mean 'forward'?)",
                   out, 1, true)
  end)
end)

describe("the global umbra", function()
  it("exists with -e and in scripts", function()
    local out, rc = h.run(h.quote(exe) .. [[ -e 'print(umbra.ones(2):sum())']])
    assert.equal(0, rc)
    assert.equal("2.0\n", out)
    local name = h.tmpname("repl")
    local f = assert(io.open(name, "w"))
    f:write("print(type(umbra.nn.Linear))\n")
    f:close()
    out, rc = h.run(h.quote(exe) .. " " .. name)
    os.remove(name)
    assert.equal(0, rc)
    assert.equal("function\n", out)
  end)
end)
