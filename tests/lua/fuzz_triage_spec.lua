-- The fuzz triage of `make fuzz` and CI (scripts/fuzz_triage.lua) on saved reports
-- (tests/fuzz/reports/, their repository root rewritten to /src/umbra): known findings in
-- Debian's libraries pass, a fault in umbra's code or an unlisted one fails.
local triage = dofile("scripts/fuzz_triage.lua")
local h = dofile("tests/lua/helpers.lua")

local ROOT = "/src/umbra"
local function read(path)
  local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close(); return s
end
local known_text = read("tests/fuzz/upstream/known")
local known = triage.read_known(known_text)
local function report(name) return read("tests/fuzz/reports/" .. name .. ".log") end

describe("fuzz triage", function()
  it("lists every finding kept in tests/fuzz/upstream/ and no other", function()
    assert.equals(5, #known)
    for _, k in ipairs(known) do
      local f = io.open("tests/fuzz/upstream/" .. k.target .. "/" .. k.name, "rb")
      assert.is_not_nil(f, k.target .. "/" .. k.name)
      f:close()
    end
  end)

  it("passes the known findings inside libhdf5 and libmatio, each for its target", function()
    for _, case in ipairs{{"h5_resealed", "global-heap-memcpy-overlap", "memcpy-param-overlap in H5HG_read"},
                          {"h5_resealed", "global-heap-segv", "SEGV in H5C_protect"},
                          {"h5_resealed", "global-heap-timeout", "timeout in H5C_protect"},
                          {"h5_resealed", "object-header-leak", "leak in ? (libhdf5_serial.so)"},
                          {"svhn", "readinfo-6GB-calloc", "out-of-memory-malloc in Mat_VarReadInfo"}} do
      local verdict, reason = triage.classify(case[1], report(case[1] .. "-" .. case[2]), known, ROOT)
      assert.equals("known", verdict, reason)
      assert.matches(case[3], reason, 1, true)
      assert.matches(case[1] .. "/" .. case[2], reason, 1, true)
    end
  end)

  it("fails a fault whose site is umbra's code, a crash or a leak", function()
    local verdict, reason = triage.classify("idx", report("idx-planted-heap-overflow"), known, ROOT)
    assert.equals("umbra", verdict)
    assert.equals("heap-buffer-overflow in umbra's read_labels", reason)
    verdict, reason = triage.classify("idx", report("idx-planted-leak"), known, ROOT)
    assert.equals("umbra", verdict)
    assert.equals("leak in umbra's read_labels", reason)
  end)

  it("fails a leak report where one block of several is umbra's", function()
    local lib = report("h5_resealed-object-header-leak")
    local ours = report("idx-planted-leak"):match("(Direct leak of.-)\nSUMMARY")
    local mixed = lib:gsub("\nSUMMARY", "\n" .. ours:gsub("%%", "%%%%") .. "\nSUMMARY", 1)
    assert.equals("umbra", (triage.classify("h5_resealed", mixed, known, ROOT)))
  end)

  it("fails a library finding that is not listed for the target that met it", function()
    -- the plain h5 target checks the digest first: libhdf5 must never see such a file there
    local verdict, reason = triage.classify("h5", report("h5_resealed-global-heap-segv"), known, ROOT)
    assert.equals("unknown", verdict)
    assert.matches("SEGV in H5C_protect (libhdf5_serial.so), not listed for h5", reason, 1, true)
    local fewer = triage.read_known(known_text:gsub("[^\n]*global%-heap%-segv[^\n]*", ""))
    assert.equals(#known - 1, #fewer)
    assert.equals("unknown", (triage.classify("h5_resealed", report("h5_resealed-global-heap-segv"), fewer, ROOT)))
  end)

  it("fails a log it cannot read: no report, or a report without a stack", function()
    local verdict, reason = triage.classify("png", "INFO: Seed: 1\nDone 100 runs in 1 second(s)\n", known, ROOT)
    assert.equals("unknown", verdict)
    assert.equals("no sanitizer or libFuzzer report in the log", reason)
    verdict = triage.classify("png", "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x0\n", known, ROOT)
    assert.equals("unknown", verdict)
  end)

  it("takes umbra's frames by the repository root, not by their names", function()
    -- the same report seen from another checkout: the frames are not under its root
    local verdict = triage.classify("idx", report("idx-planted-heap-overflow"), known, "/elsewhere")
    assert.equals("unknown", verdict)
  end)

  it("exits 0 only for a known finding when run as a script", function()
    local base = "lua5.4 scripts/fuzz_triage.lua "
    local known_file = " tests/fuzz/upstream/known " .. ROOT
    local out, rc = h.run(base .. "svhn tests/fuzz/reports/svhn-readinfo-6GB-calloc.log" .. known_file)
    assert.equals(0, rc, out)
    assert.matches("^known out%-of%-memory%-malloc", out)
    out, rc = h.run(base .. "idx tests/fuzz/reports/idx-planted-leak.log" .. known_file)
    assert.equals(1, rc, out)
    assert.matches("^umbra leak", out)
  end)
end)
