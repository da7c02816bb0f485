-- recipes/paper/worst_case_table.lua: the worst-case table of recipes/paper/RESULTS.md from
-- the files of recipes/paper/worst_case.lua: per model the paper's attack on its points,
-- worst of three (paper + worst3_extra) and the suite (worst3 + suite_extra) on the first
-- points each covers, with MMC, share at confidence >= 0.99, escapes, AUC / AAUC / GAUC on
-- the same points (checked: attack <= bound at eps 0.3 per point, GAUC <= AAUC <= AUC), where
-- the suite beats worst of three, and a plot per model of the sorted per-point sandwich.
-- Usage: umbra recipes/paper/worst_case_table.lua --dir DIR NAME ...   (files DIR/NAME.<attack>.lua)
local umbra = require "umbra"
local eval = require "umbra.eval"
local plot = require "umbra.plot"
local function fail(msg) io.stderr:write("worst_case_table: ", msg, "\n"); os.exit(1) end

local parser = require("argparse")("worst_case_table", "The worst-case table from recipes/paper/worst_case.lua files")
parser:argument("names", "model names (files DIR/NAME.paper.lua, .worst3_extra.lua, .suite_extra.lua)"):args("+")
parser:option("--dir", "folder of the files", "runs/worst_case")
parser:flag("--no_plots", "draw no sandwich plots")
local args = parser:parse(arg)

local function load(name, attack)
  local path = string.format("%s/%s.%s.lua", args.dir, name, attack)
  if not io.open(path) then return nil end
  local ok, r = pcall(dofile, path)
  if not ok then fail(path .. ": " .. tostring(r)) end
  r.path = path
  return r
end

-- per point max of two value lists over the first n points
local function merged(a, b, n)
  local m = {}
  for i = 1, n do m[i] = math.max(a[i], b[i]) end
  return m
end

local function head(t, n) return {table.unpack(t, 1, n)} end
local function share99(c) local k = 0 for _, v in ipairs(c) do if v >= 0.99 then k = k + 1 end end return k / #c end
local function mean(c) local s = 0 for _, v in ipairs(c) do s = s + v end return s / #c end
local function cell(v) return v and string.format("%.3f", v) or "–" end
local function eps_index(r, eps) for k, e in ipairs(r.certify) do if math.abs(e - eps) < 1e-12 then return k end end end

-- a later stage must be the same checkpoint, noise and batches as the paper's file
local function same_run(p, r)
  -- files written before the noise's description dropped its point count ("the first N ...")
  local function plain(v) return type(v) == "string" and v:gsub("the first %d+ ", "the ") or v end
  for _, k in ipairs{"checkpoint", "eps", "seed", "batch_size", "noise"} do
    if plain(p[k]) ~= plain(r[k]) then
      fail(string.format("%s and %s differ in %s (%s vs %s)", p.path, r.path, k, tostring(p[k]), tostring(r[k])))
    end
  end
  -- the same noise gives the same clean confidence up to rounding: a stage of fewer points
  -- runs the model on a smaller batch, whose sums the convolutions may order differently
  for i = 1, math.min(p.n, r.n) do
    if math.abs(p.clean[i] - r.clean[i]) > 1e-5 then
      fail(string.format("%s and %s: noise point %d differs (clean confidence %.7f vs %.7f)", p.path, r.path, i,
                         p.clean[i], r.clean[i]))
    end
  end
end

local rows, gains, plots = {}, {}, {}
for _, name in ipairs(args.names) do
  local p = load(name, "paper")
  if not p then fail(string.format("no %s/%s.paper.lua", args.dir, name)) end
  local k3, k01 = eps_index(p, 0.3), eps_index(p, 0.01)
  local stages = {{label = "paper (80 x 0.02)", n = p.n, conf = p.best}}
  local w3 = load(name, "worst3_extra")
  if w3 then
    same_run(p, w3)
    local n3 = math.min(p.n, w3.n)
    stages[2] = {label = "worst of three", n = n3, conf = merged(p.best, w3.best, n3)}
    local s = load(name, "suite_extra")
    if s then
      same_run(p, s)
      local ns = math.min(n3, s.n)
      local c3 = head(stages[2].conf, ns)
      local cs = merged(c3, s.best, ns)
      local esc, per = 0, {}
      for _, nm in ipairs(s.names) do
        if nm ~= "clean" then esc = esc + s.escapes[nm]; per[#per + 1] = nm .. " " .. s.escapes[nm] end
      end
      stages[3] = {label = string.format("suite (APGD %dx%d, MPGD %d x 3 starts)", s.apgd_steps, s.apgd_restarts,
                                         s.mpgd_steps), n = ns, conf = cs, escapes = esc}
      local stronger, best_gain, sum_gain = 0, 0, 0
      for i = 1, ns do
        if cs[i] > c3[i] then stronger = stronger + 1 end
        best_gain = math.max(best_gain, cs[i] - c3[i]); sum_gain = sum_gain + cs[i] - c3[i]
      end
      local member_means = {}
      for j, nm in ipairs(s.names) do
        if nm ~= "clean" then member_means[#member_means + 1] = string.format("%s %.3f", nm, mean(s.members[j - 1])) end
      end
      gains[#gains + 1] = string.format("%s, first %d points: the suite is above worst of three on %d points, by up "
        .. "to %.3f (mean over all %d points %.3f); escapes per member: %s; members' MMC: %s; wall %.0f s "
        .. "(suite_extra) + %.0f s (worst3_extra on %d points) + %.0f s (paper and bounds on %d)", name, ns,
        stronger, best_gain, ns, sum_gain / ns, table.concat(per, ", "), table.concat(member_means, ", "),
        s.wall_s, w3.wall_s, w3.n, p.wall_s, p.n)
    end
  end
  for _, st in ipairs(stages) do
    local n = st.n
    local clean = head(p.clean, n)
    local b3 = k3 and head(p.bounds[k3], n)
    local b01 = k01 and head(p.bounds[k01], n)
    if b3 then   -- every attacked point at or below its bound, with float32 rounding
      for i = 1, n do
        if st.conf[i] > b3[i] + 1e-5 then
          fail(string.format("%s, %s: point %d attacked to %.7f above its bound %.7f", name, st.label, i, st.conf[i],
                             b3[i]))
        end
      end
    end
    local auc, aauc, g3, g01
    if p.conf_in then
      local cin = umbra.tensor(p.conf_in)
      local s = eval.sandwich(cin, {clean = umbra.tensor(clean), attack = umbra.tensor(st.conf),
                                    bound = b3 and umbra.tensor(b3), tol = 1e-5})
      auc, aauc, g3 = s.auc, s.aauc, s.gauc
      g01 = b01 and eval.auroc_conservative(cin, umbra.tensor(b01))
    end
    rows[#rows + 1] = string.format("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |", name, st.label, n,
      cell(mean(clean)), cell(mean(st.conf)), cell(share99(st.conf)), st.escapes and tostring(st.escapes) or "–",
      cell(auc), cell(aauc), cell(g3), cell(g01), b01 and string.format("%.4f", mean(b01)) or "–")
  end
  plots[#plots + 1] = {name = name, stage = stages[#stages], p = p, k3 = k3}
end

print("| model | attack (eps 0.3) | points | MMC clean noise | MMC attacked | share >= 0.99 | escapes | AUC | AAUC "
      .. "| GAUC (eps 0.3) | GAUC (eps 0.01) | mean bound (eps 0.01) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for _, r in ipairs(rows) do print(r) end
print("")
print("AUC, AAUC, GAUC: conservative AUROCs (ties count as failures) of the clean test images against the clean, "
      .. "attacked and certified confidences of the same noise points; every attacked point was checked against its "
      .. "eps-0.3 bound. Escapes: zero-gradient / stall redraws of APGD and MPGD (PGD has none).")
for _, gline in ipairs(gains) do print(""); print(gline) end

if not args.no_plots then
  for _, pl in ipairs(plots) do
    if pl.k3 then
      local n, st, p = pl.stage.n, pl.stage, pl.p
      local idx = {}
      for i = 1, n do idx[i] = i end
      local b = p.bounds[pl.k3]
      -- ties of the bound (often all at 1.0) ordered by the attack's value, then the clean one
      table.sort(idx, function(x, y)
        if b[x] ~= b[y] then return b[x] < b[y] end
        if st.conf[x] ~= st.conf[y] then return st.conf[x] < st.conf[y] end
        if p.clean[x] ~= p.clean[y] then return p.clean[x] < p.clean[y] end
        return x < y
      end)
      local xs, sb, sa, sc = {}, {}, {}, {}
      for r, i in ipairs(idx) do xs[r] = r; sb[r] = b[i]; sa[r] = st.conf[i]; sc[r] = p.clean[i] end
      local path = string.format("%s/sandwich_%s.png", args.dir, pl.name)
      local ok, err = plot.lines{path = path, yrange = {0, 1}, ylabel = "max confidence",
        title = string.format("%s: %d noise points sorted by certified bound (eps 0.3), then attack", pl.name, n),
        xlabel = "noise point (sorted by IBP bound, ties by the attack's confidence)",
        series = {{x = xs, y = sb, title = "certified bound (IBP)"}, {x = xs, y = sa, title = "attack: " .. st.label},
                  {x = xs, y = sc, title = "clean", dashed = true}}}
      io.stderr:write(ok and ("wrote " .. path .. "\n") or ("worst_case_table: warning: " .. tostring(err) .. "\n"))
    end
  end
end
