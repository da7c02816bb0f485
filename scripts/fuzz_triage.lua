-- Classify the report of a fuzz target that stopped (scripts/run-fuzz) as "umbra" (the
-- fault is in umbra's code: a bug to fix), "known" (in a Debian library, and listed in
-- tests/fuzz/upstream/known for this target) or "unknown" (in a library but not listed, or
-- no report that can be read). Only "known" lets CI pass. Policy: tests/fuzz/README.md.
-- Usage: lua5.4 scripts/fuzz_triage.lua TARGET LOG [KNOWN] [ROOT]
--        prints one line "<verdict> <reason>"; exit 0 for known, 1 otherwise.
local M = {}

-- C libraries the fault passes through rather than happens in (a NULL given to strlen is
-- the caller's fault): skipped like the sanitizer runtime.
local TRANSPARENT = {"libc.so", "libm.so", "ld-linux", "libstdc++.so", "libgcc_s.so"}

--- frame(rest) -> {fn = name or nil, file = source path or nil, module = binary or nil}
--- from the text after "#N 0xADDR " of a sanitizer stack line.
function M.frame(rest)
  rest = rest:gsub("%s*%(BuildId: %x+%)%s*$", "")
  local fn, module = rest:match("^in (.-)%s*%(([^()]*)%+0x%x+%)$")
  if not fn then module = rest:match("^%s*%(([^()]*)%+0x%x+%)$") end
  if module then return {fn = fn ~= "" and fn or nil, module = module} end
  local name, file = rest:match("^in (.-) (%S+):%d+")
  if name then return {fn = name, file = file} end
  return {fn = rest:match("^in (%S+)")}
end

-- umbra's own code: a source file of the repository (the engine, the binding, the fuzz
-- entry points).
local function in_repo(file, root)
  return file:sub(1, #root + 1) == root .. "/"
end

--- place(frame, root) -> "umbra", "runtime" or "library", and the library's name: the
--- sanitizer runtime and libFuzzer are linked into the fuzz binary without source lines,
--- so a frame of the executable without a source file is theirs.
function M.place(f, root)
  if f.file then
    if in_repo(f.file, root) then return "umbra" end
    return "runtime"                 -- libc's own sources (csu/...), the sanitizers' sources
  end
  if not f.module then return "runtime" end
  local base = f.module:match("([^/]+)$")
  for _, lib in ipairs(TRANSPARENT) do
    if base:sub(1, #lib) == lib then return "runtime" end
  end
  local so = base:match("^(.-%.so)")
  if not so then return "runtime" end  -- the fuzz binary itself: sanitizer runtime, libFuzzer
  return "library", so
end

--- parse(text) -> {kind = ..., stacks = {stack, ...}} of the first report in a fuzz log.
--- kind: heap-buffer-overflow, SEGV, memcpy-param-overlap, ... (ASan's name), leak,
--- out-of-memory-malloc, out-of-memory-rss, timeout, deadly-signal, undefined-behavior.
--- stacks: the fault's stack, or for leaks one stack per leaked block.
function M.parse(text)
  local kind
  for line in text:gmatch("[^\n]+") do
    local k = line:match("ERROR: AddressSanitizer: ([%w_%-]+)")
    if line:match("ERROR: LeakSanitizer: detected memory leaks") then k = "leak"
    elseif line:match("ERROR: libFuzzer: out%-of%-memory %(malloc") then k = "out-of-memory-malloc"
    elseif line:match("ERROR: libFuzzer: out%-of%-memory") then k = "out-of-memory-rss"
    elseif line:match("ERROR: libFuzzer: timeout") then k = "timeout"
    elseif line:match("ERROR: libFuzzer: deadly signal") then k = "deadly-signal"
    elseif line:match(": runtime error: ") then k = "undefined-behavior"
    end
    if k then kind = k; break end
  end
  local stacks, current, in_report, leak_block = {}, nil, false, false
  for line in text:gmatch("[^\n]+") do
    if line:match("ERROR: ") or line:match(": runtime error: ") then in_report = true end
    if line:match("leak of %d+ byte") then leak_block = true end
    local n, rest = line:match("^%s+#(%d+) 0x%x+ (.*)$")
    if in_report and n then
      if n == "0" then
        current = nil
        -- the fault's own stack, then (leaks) each block's; not "allocated by" and the like
        if #stacks == 0 or (kind == "leak" and leak_block) then current = {}; stacks[#stacks + 1] = current end
        leak_block = false
      end
      if current then current[#current + 1] = M.frame(rest) end
    elseif line:match("^SUMMARY: ") then
      break
    end
  end
  if kind == "undefined-behavior" and #stacks == 0 then
    -- no stack printed: the runtime error's location is enough (only umbra is instrumented)
    local file = text:match("([^\n%s:]+):%d+:%d+: runtime error: ")
    stacks[1] = {{fn = "?", file = file}}
  end
  return {kind = kind, stacks = stacks}
end

--- site(stack, root) -> "umbra" | "library" | "none", the library, the first named library
--- function: where the fault happened, skipping the runtime frames above it.
function M.site(stack, root)
  for i, f in ipairs(stack) do
    local where, lib = M.place(f, root)
    if where == "umbra" then return "umbra", nil, f.fn end
    if where == "library" then
      for j = i, #stack do   -- libraries without symbols: the nearest frame with a name
        local w = M.place(stack[j], root)
        if w == "umbra" then break end
        if stack[j].fn then return "library", lib, stack[j].fn end
      end
      return "library", lib, "?"
    end
  end
  return "none"
end

--- read_known(text) -> {{target, name, kind, library, fn}, ...}: tests/fuzz/upstream/known.
function M.read_known(text)
  local known = {}
  for line in text:gmatch("[^\n]+") do
    local t, name, kind, lib, fn = line:match("^(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s*$")
    if t and not t:match("^#") then
      known[#known + 1] = {target = t, name = name, kind = kind, library = lib, fn = fn}
    end
  end
  return known
end

--- classify(target, log_text, known, root) -> "umbra" | "known" | "unknown", reason
function M.classify(target, text, known, root)
  local report = M.parse(text)
  if not report.kind then return "unknown", "no sanitizer or libFuzzer report in the log" end
  if #report.stacks == 0 then return "unknown", report.kind .. " without a stack to tell where" end
  local found
  for _, stack in ipairs(report.stacks) do
    local where, lib, fn = M.site(stack, root)
    if where == "umbra" then return "umbra", report.kind .. " in umbra's " .. (fn or "?") end
    if where == "none" then return "unknown", report.kind .. " with only runtime frames" end
    local match
    for _, k in ipairs(known) do
      if k.target == target and k.kind == report.kind and k.library == lib and k.fn == fn then match = k end
    end
    if not match then
      return "unknown", string.format("%s in %s (%s), not listed for %s in tests/fuzz/upstream/known",
                                      report.kind, fn, lib, target)
    end
    found = found or match
  end
  return "known", string.format("%s in %s (%s): known upstream finding %s/%s", report.kind, found.fn,
                                found.library, target, found.name)
end

local function slurp(path)
  local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close(); return s
end

if arg and arg[0] and arg[0]:match("fuzz_triage%.lua$") then
  local target, log = arg[1], arg[2]
  if not target or not log then
    io.stderr:write("usage: lua5.4 scripts/fuzz_triage.lua TARGET LOG [KNOWN] [ROOT]\n"); os.exit(2)
  end
  local known = M.read_known(slurp(arg[3] or "tests/fuzz/upstream/known"))
  local verdict, reason = M.classify(target, slurp(log), known, arg[4] or os.getenv("PWD") or ".")
  print(verdict .. " " .. reason)
  os.exit(verdict == "known" and 0 or 1)
end
return M
