-- umbra.worst_analysis: the worst-case numbers of an evaluation file (docs/worst-case.md;
-- groups written by umbra.worst_eval): on the first n noise points, the attacked MMC, the
-- share at confidence >= 0.99, AUC / AAUC / GAUC (conservative AUROCs against the clean test
-- set: clean noise, attacked noise, certified bounds), with the checks GAUC <= AAUC <= AUC and
-- attack <= bound per point at the attack's eps; CSV columns, a Markdown table and the
-- sorted per-point sandwich plot.
local eval = require "umbra.eval"
local plot = require "umbra.plot"

local worst_analysis = {}

--- compute(ev, conf_in) -> nil when the file has no worst-case groups, else {n, attack,
--- mmc, share99, auc, aauc, escapes, bounds = {{eps, gauc, mean}}, conf, clean, bound_at_eps}.
function worst_analysis.compute(ev, conf_in)
  local a = ev.attrs
  local w = {bounds = {}, attack = a.worst_attack, escapes = tonumber(a.worst_escapes), n = tonumber(a.worst_n)}
  local worst = ev.sets.noise_worst
  if worst then
    w.conf = eval.max_conf(worst.probs)
    w.clean = worst.clean_conf
    w.mmc = eval.mmc(w.conf)
    local hi = 0
    for _, c in ipairs(w.conf:to_table()) do if c >= 0.99 then hi = hi + 1 end end
    w.share99 = hi / w.conf:size(1)
  end
  for k = 1, math.huge do
    local set = ev.sets["noise_bound_" .. k]
    if not set then break end
    local eps = tonumber(a["bound_eps_" .. k])
    local at_eps = w.conf and math.abs(eps - (tonumber(a.eps) or -1)) < 1e-12
    local gauc
    if at_eps then   -- the attack's eps: attack <= bound per point and GAUC <= AAUC <= AUC, else an error
      local s = eval.sandwich(conf_in, {clean = w.clean, attack = w.conf, bound = set.bound, tol = 1e-5})
      w.auc, w.aauc, w.bound_at_eps, gauc = s.auc, s.aauc, set.bound, s.gauc
    else
      gauc = eval.auroc_conservative(conf_in, set.bound)
    end
    w.bounds[#w.bounds + 1] = {eps = eps, gauc = gauc, mean = eval.mmc(set.bound)}
  end
  if w.conf and not w.aauc then
    local s = eval.sandwich(conf_in, {clean = w.clean, attack = w.conf})
    w.auc, w.aauc = s.auc, s.aauc
  end
  if not w.conf and #w.bounds == 0 then return nil end
  return w
end

--- CSV columns and values (add(column, value)) of a compute result.
function worst_analysis.csv(w, add)
  add("worst_attack", w.attack or "none")
  add("worst_n", w.n or 0 / 0)
  add("Mean maximum confidence on noise_worst", w.mmc or 0 / 0)
  add("noise_worst share >= 0.99", w.share99 or 0 / 0)
  add("AUC noise_worst", w.auc or 0 / 0)
  add("AAUC noise_worst", w.aauc or 0 / 0)
  for _, b in ipairs(w.bounds) do add(string.format("GAUC noise eps=%g", b.eps), b.gauc) end
end

local function cell(v) return (v == nil or v ~= v) and "–" or string.format("%.3f", v) end

--- The certified eps of the runs' worst cases, in increasing order, each once.
function worst_analysis.bound_eps(results)
  local eps_cols, seen = {}, {}
  for _, r in ipairs(results) do
    for _, b in ipairs(r.worst and r.worst.bounds or {}) do
      if not seen[b.eps] then seen[b.eps] = true; eps_cols[#eps_cols + 1] = b.eps end
    end
  end
  table.sort(eps_cols)
  return eps_cols
end

--- The GAUC of a compute result at eps, or nil when it was not certified there.
function worst_analysis.gauc_at(w, eps)
  for _, b in ipairs(w.bounds) do if b.eps == eps then return b.gauc end end
end

--- A Markdown table: one row per run with a worst case; "" when none has one.
function worst_analysis.markdown(results, names)
  local eps_cols = worst_analysis.bound_eps(results)
  local head = {"run", "attack", "points", "MMC", "share >= 0.99", "AUC", "AAUC"}
  for _, e in ipairs(eps_cols) do head[#head + 1] = string.format("GAUC (eps %g)", e) end
  local lines = {"Worst case on the first noise points (conservative AUROCs against the clean test set):", "",
                 "| " .. table.concat(head, " | ") .. " |", "|" .. string.rep("---|", #head)}
  local any = false
  for i, r in ipairs(results) do
    local w = r.worst
    if w then
      any = true
      local row = {(names and names[i]) or r.name, w.attack or "–", tostring(math.tointeger(w.n) or "–"), cell(w.mmc),
                   cell(w.share99), cell(w.auc), cell(w.aauc)}
      for _, e in ipairs(eps_cols) do row[#row + 1] = cell(worst_analysis.gauc_at(w, e)) end
      lines[#lines + 1] = "| " .. table.concat(row, " | ") .. " |"
    end
  end
  return any and table.concat(lines, "\n") or ""
end

--- The sorted per-point sandwich: points ordered by their certified bound, the bound and the
--- attack's confidence (and the clean one) at each; keep(path, plot results) as analysis.draw.
function worst_analysis.draw(res, dir, keep)
  local w = res.worst
  if not (w and w.conf and w.bound_at_eps) then return end
  local bound, conf, clean = w.bound_at_eps:to_table(), w.conf:to_table(), w.clean:to_table()
  local idx = {}
  for i = 1, #bound do idx[i] = i end
  table.sort(idx, function(x, y) if bound[x] ~= bound[y] then return bound[x] < bound[y] end return x < y end)
  local xs, sb, sa, sc = {}, {}, {}, {}
  for r, i in ipairs(idx) do xs[r] = r; sb[r] = bound[i]; sa[r] = conf[i]; sc[r] = clean[i] end
  local path = dir .. "/sandwich_noise.png"
  local title = string.format("%s: per-point confidence on noise, sorted by bound", res.name)
  keep(path, plot.lines{path = path, title = title,
                        xlabel = "noise point (sorted by certified bound)", ylabel = "max confidence", yrange = {0, 1},
                        series = {{x = xs, y = sb, title = "certified bound (IBP)"},
                                  {x = xs, y = sa, title = "attack (" .. tostring(w.attack) .. ")"},
                                  {x = xs, y = sc, title = "clean", dashed = true}}})
end

return worst_analysis
