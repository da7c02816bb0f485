-- umbra.scores_analysis: the post-hoc score tables of an evaluation file (groups
-- scores/<score>/<set> that evaluate.lua --scores writes): per score, for the noise and each
-- OOD set against the clean test set, the AUROC (ties counted half), the conservative AUROC,
-- FPR at 95 % TPR in both conventions (in-distribution positive, as the paper; OOD positive,
-- as the later literature) and AUPR-In; one Markdown table per score headed by its name. The
-- set noise_attacked (evaluate.lua --scores with --attack) is the noise under the attack on
-- that score: its AUROC is the score's AAUC.
local eval = require "umbra.eval"
local scores = require "umbra.scores"

local scores_analysis = {}

--- compute(ev) -> nil without score groups, else {fit =, names = {...}, by_score = {<score> =
--- {sets = {<set> = metrics}, order = {set names}}}}
function scores_analysis.compute(ev)
  local names = {}
  for _, n in ipairs(scores.names) do if ev.sets["scores/" .. n] then names[#names + 1] = n end end
  if #names == 0 then return nil end
  local out = {fit = ev.attrs.scores_fit, names = names, by_score = {}, attack = ev.attrs.scores_attack,
               attack_n = ev.attrs.scores_attack_n}
  for _, n in ipairs(names) do
    local g = ev.sets["scores/" .. n]
    if not g.clean then error("scores/" .. n .. " has no clean set", 0) end
    local sets, order = {}, {}
    for set in pairs(g) do if set ~= "clean" then order[#order + 1] = set end end
    table.sort(order, function(a, b) return (a == "noise" and "" or a) < (b == "noise" and "" or b) end)
    for _, set in ipairs(order) do sets[set] = eval.detection_metrics(g.clean, g[set]) end
    out.by_score[n] = {sets = sets, order = order, n_in = g.clean:size(1)}
  end
  return out
end

local TITLES = {msp = "MSP (max softmax probability)", maxlogit = "MaxLogit", energy = "Energy",
                odin = "ODIN", mahalanobis = "Mahalanobis"}

local function cell(v) return (v == nil or v ~= v) and "–" or string.format("%.3f", v) end

--- markdown(results, names) -> one table per score and run; "" when no run has scores
function scores_analysis.markdown(results, names)
  local out = {}
  for i, r in ipairs(results) do
    local s = r.scores
    if s then
      local run = (names and names[i]) or r.name
      for _, n in ipairs(s.names) do
        local b = s.by_score[n]
        local lines = {string.format("%s (%s; %d in-distribution test images)", TITLES[n], run, b.n_in), "",
                       "| set | AUROC | AUROC (conservative) | FPR@95 (in positive) | FPR@95 (OOD positive) "
                       .. "| AUPR-In |",
                       "|---|---|---|---|---|---|"}
        for _, set in ipairs(b.order) do
          local m = b.sets[set]
          local label = set == "noise_attacked"
            and string.format("noise, attacked (%s on %s, %s points)", s.attack or "?", TITLES[n], tostring(s.attack_n))
            or (set:gsub("^ood_", ""))
          lines[#lines + 1] = string.format("| %s | %s | %s | %s | %s | %s |", label, cell(m.auroc),
                                            cell(m.auroc_conservative), cell(m.fpr95_in_positive),
                                            cell(m.fpr95_ood_positive), cell(m.aupr_in))
        end
        out[#out + 1] = table.concat(lines, "\n")
      end
      if s.fit then out[#out + 1] = s.fit end
    end
  end
  return table.concat(out, "\n\n")
end

return scores_analysis
