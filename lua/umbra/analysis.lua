-- umbra.analysis: from an evaluation file to the paper's numbers (docs/method.md §6.2, §8):
-- MMC, AUROC and FPR@95 of every set against the clean test set, resistance to adversarial
-- samples; the authors' CSV row (their columns, in their order); Table 1 blocks in Markdown,
-- several runs side by side; the run's pictures (histograms, ROC curves, image grids).
local umbra = require "umbra"
local eval = require "umbra.eval"
local evalfile = require "umbra.evalfile"
local plot = require "umbra.plot"
local worst_analysis = require "umbra.worst_analysis"

local analysis = {}

-- names as the paper's tables write them; OOD rows in the paper's order
local DISPLAY = {mnist = "MNIST", fashion_mnist = "FMNIST", emnist_letters = "EMNIST", emnist = "EMNIST",
                 gray_cifar10 = "grayCIFAR-10", svhn = "SVHN", cifar10 = "CIFAR-10", cifar100 = "CIFAR-100",
                 lsun_classroom = "LSUN CR", imagenet_minus = "Imagenet-"}
local OOD_ORDER = {"mnist", "fashion_mnist", "emnist_letters", "emnist", "gray_cifar10", "svhn", "cifar10", "cifar100",
                   "lsun_classroom", "imagenet_minus"}
-- the attacked sets: our group, the authors' CSV name, the table's row label
local ATTACKED = {
  {set = "noise", csv = "noise", label = "Noise"},
  {set = "noise_adv", csv = "noise_adv", label = "Adv. Noise"},
  {set = "noise_adv_worst", csv = "noise_adv_more", label = "Adv. Noise (worst of 3)"},
  {set = "adv", csv = "adv", label = "Adv. Samples"},
}
local MMC_COLUMN = {
  noise = "Mean maximum confidence on noise",
  noise_adv = "Mean maximum confidence on noise_adv (noise + pgd)",
  noise_adv_worst = "Mean maximum confidence on noise_adv_more (noise + pgd)",
  adv = "Mean maximum confidence on adv (clean + pgd not_resisted)",
}

function analysis.display_name(name) return DISPLAY[name] or name end

local NAN = 0 / 0
local function empty_metrics() return {n = 0, mmc = NAN, auroc = NAN, fpr = NAN} end

--- analysis.compute(ev [, name]) -> res: the metrics of an evaluation file (evalfile.read).
--- res = {name, dataset, test_error, tau, mmc_clean, resistance_adv, sets = {<set> = {n, mmc,
--- auroc, fpr}}, ood = {<name> = {...}}, ood_names, conf = {<set or ood name> = tensor}}.
function analysis.compute(ev, name)
  local a = ev.attrs
  local res = {name = name or a.model_name or ev.path:match("([^/]+)/[^/]*$") or ev.path,
               dataset = a.dataset or "?", test_error = tonumber(a.test_error) or NAN, checkpoint = a.checkpoint,
               path = ev.path, sets = {}, ood = {}, ood_names = ev.ood_names, conf = {}, resistance_adv = NAN}
  if res.test_error ~= res.test_error then  -- no attribute: the error of the stored clean outputs
    local pred, y, wrong = ev.sets.clean.probs:argmax(2):to_table(), ev.sets.clean.labels:to_table(), 0
    for i = 1, #y do if pred[i] ~= y[i] then wrong = wrong + 1 end end
    res.test_error = #y > 0 and wrong / #y or NAN
  end
  local conf_in = eval.max_conf(ev.sets.clean.probs)
  res.conf.clean = conf_in
  res.mmc_clean = eval.mmc(conf_in)
  res.tau = eval.percentile(conf_in, 5)   -- the 95 % TPR threshold (eval.fpr_at_tpr's tau)
  for _, s in ipairs(ATTACKED) do
    local set = ev.sets[s.set]
    if set then
      local probs = set.probs
      if s.set == "adv" then  -- only the points the attack fooled (docs/method.md §11.5)
        local fooled
        res.resistance_adv, fooled = eval.resistance(set.probs, set.labels)
        probs = eval.select_rows(set.probs, fooled)
      end
      res.conf[s.set] = probs:size(1) > 0 and eval.max_conf(probs) or umbra.zeros(0)
      res.sets[s.set] = eval.set_metrics(conf_in, res.conf[s.set])
    end
  end
  for _, o in ipairs(ev.ood_names) do
    res.conf[o] = eval.max_conf(ev.ood[o].probs)
    res.ood[o] = eval.set_metrics(conf_in, res.conf[o])
  end
  res.worst = worst_analysis.compute(ev, conf_in)   -- nil without /noise_worst or bounds
  res.scores = require("umbra.scores_analysis").compute(ev)   -- nil without --scores groups
  return res
end

-- ---- CSV ---------------------------------------------------------------------------------

analysis.CSV_COMMENT = "# umbra analyze: the noise_adv_more columns (auc_score_noise_adv_more; Mean maximum confidence "
  .. "on noise_adv_more; noise_adv_more95) hold umbra's noise_adv_worst: per point the most confident of three PGD "
  .. "attacks on the first 1024 noise points (docs/method.md §11.5); not the authors' 200-iteration attack"

-- shortest text that reads back as the same double (as Python's repr); nan for NaN
local function number_text(v)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

local function csv_field(v)
  local s = type(v) == "number" and number_text(v) or tostring(v)
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- The authors' columns (analysis.py) and this run's values, in their order.
function analysis.csv_row(res)
  local cols, vals = {}, {}
  local function add(c, v) cols[#cols + 1] = c; vals[#vals + 1] = v end
  local function metric(set, field) return (res.sets[set] or empty_metrics())[field] end
  add("model_name", res.name)
  add("err_rate_test", res.test_error)
  add("resistance_adv", res.resistance_adv)
  for _, s in ipairs(ATTACKED) do add("auc_score_" .. s.csv, metric(s.set, "auroc")) end
  for _, o in ipairs(res.ood_names) do add("auc_score_" .. o, res.ood[o].auroc) end
  add("Mean maximum confidence on clean", res.mmc_clean)
  for _, s in ipairs(ATTACKED) do add(MMC_COLUMN[s.set], metric(s.set, "mmc")) end
  for _, o in ipairs(res.ood_names) do add("Mean maximum confidence on " .. o, res.ood[o].mmc) end
  add("conf_tpr95", res.tau)
  for _, s in ipairs(ATTACKED) do add(s.csv .. "95", metric(s.set, "fpr")) end
  for _, o in ipairs(res.ood_names) do add(o .. "95", res.ood[o].fpr) end
  if res.worst then worst_analysis.csv(res.worst, add) end   -- AAUC and GAUC columns
  return cols, vals
end

local function csv_line(fields)
  local out = {}
  for i, v in ipairs(fields) do out[i] = csv_field(v) end
  return table.concat(out, ",")
end

-- the fields of one CSV line (quoted fields may hold commas and doubled quotes)
local function csv_split(line)
  local out, i = {}, 1
  while i <= #line + 1 do
    if line:sub(i, i) == '"' then
      local j, buf = i + 1, {}
      while j <= #line do
        local c = line:sub(j, j)
        if c == '"' and line:sub(j + 1, j + 1) == '"' then buf[#buf + 1] = '"'; j = j + 2
        elseif c == '"' then j = j + 1; break
        else buf[#buf + 1] = c; j = j + 1 end
      end
      out[#out + 1] = table.concat(buf)
      i = j + 1
    else
      local j = line:find(",", i, true) or #line + 1
      out[#out + 1] = line:sub(i, j - 1)
      i = j + 1
    end
  end
  return out
end

-- why header (fields) differs from cols, naming the first column that differs
local function header_difference(fields, cols)
  for k = 1, math.max(#fields, #cols) do
    if fields[k] ~= cols[k] then
      return string.format("column %d is %s there and %s here (%d and %d columns)", k,
                           fields[k] and "'" .. fields[k] .. "'" or "missing",
                           cols[k] and "'" .. cols[k] .. "'" or "missing",
                           #fields, #cols)
    end
  end
end

--- Append the runs' rows (results: a list of analysis.compute results) to a CSV file, creating
--- it (comment line and header) when it is new or empty. Every row is checked against the
--- file's header first, so that nothing is written unless all fit: true | nil, message.
function analysis.append_csv(path, results)
  local f = io.open(path, "r")
  local existing
  if f then
    for line in f:lines() do
      line = line:gsub("\r$", "")
      if line ~= "" and line:sub(1, 1) ~= "#" then existing = csv_split(line); break end
    end
    f:close()
  end
  local lines, had_header = {}, existing ~= nil
  for i, res in ipairs(results) do
    local cols, vals = analysis.csv_row(res)
    local diff = existing and header_difference(existing, cols)
    if diff then
      return nil, string.format("%s has other columns than run %s (%s): %s; nothing was written. Runs with other "
                                .. "out-of-distribution sets need another file (--csv)",
                                had_header and path or "run " .. results[1].path, res.name, res.path, diff)
    end
    existing = existing or cols
    if i == 1 and not had_header then lines[#lines + 1] = analysis.CSV_COMMENT; lines[#lines + 1] = csv_line(cols) end
    lines[#lines + 1] = csv_line(vals)
  end
  local out, err = io.open(path, "a")
  if not out then return nil, "cannot write " .. path .. ": " .. tostring(err) end
  out:write(table.concat(lines, "\n"), "\n")
  out:close()
  return true
end

-- ---- Markdown (Table 1) ------------------------------------------------------------------

local function cell(v) return v ~= v and "–" or string.format("%.3f", v) end

local function ood_rows(results)
  local seen, rows = {}, {}
  for _, r in ipairs(results) do for _, o in ipairs(r.ood_names) do seen[o] = true end end
  for _, o in ipairs(OOD_ORDER) do if seen[o] then rows[#rows + 1] = o; seen[o] = nil end end
  local rest = {}
  for o in pairs(seen) do rest[#rest + 1] = o end
  table.sort(rest)
  for _, o in ipairs(rest) do rows[#rows + 1] = o end
  return rows
end

-- one table for runs trained on the same data set; when a run has a worst case, every group
-- gains the columns AAUC and GAUC (one per certified eps), filled in the Noise row
local function block(results, names)
  local lines = {}
  local head = {"Trained on " .. analysis.display_name(results[1].dataset)}
  local sub = {""}
  local sep = {"---"}
  local eps_cols = worst_analysis.bound_eps(results)
  local has_worst = false
  for _, r in ipairs(results) do has_worst = has_worst or r.worst ~= nil end
  local cols = {"MMC", "AUROC", "FPR@95"}
  if has_worst then
    cols[#cols + 1] = "AAUC"
    for _, e in ipairs(eps_cols) do cols[#cols + 1] = string.format("GAUC (eps %g)", e) end
  end
  for i, r in ipairs(results) do
    local te = r.test_error == r.test_error and string.format(" (TE %.2f %%)", 100 * r.test_error) or ""
    head[#head + 1] = names[i] .. te
    for _ = 2, #cols do head[#head + 1] = "" end
    for _, c in ipairs(cols) do sub[#sub + 1] = c; sep[#sep + 1] = "---:" end
  end
  local function row(cells) lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |" end
  row(head); row(sep); row(sub)
  local clean = {analysis.display_name(results[1].dataset)}
  for _, r in ipairs(results) do
    clean[#clean + 1] = cell(r.mmc_clean)
    for _ = 2, #cols do clean[#clean + 1] = "–" end
  end
  row(clean)
  local function metric_row(label, get, worst_set)
    local cells, any = {label}, false
    for _, r in ipairs(results) do
      local m = get(r)
      any = any or m ~= nil
      m = m or empty_metrics()
      cells[#cells + 1] = cell(m.mmc); cells[#cells + 1] = cell(m.auroc); cells[#cells + 1] = cell(m.fpr)
      if has_worst then
        local w = worst_set and r.worst
        cells[#cells + 1] = cell(w and w.aauc or NAN)
        for _, e in ipairs(eps_cols) do cells[#cells + 1] = cell(w and worst_analysis.gauc_at(w, e) or NAN) end
      end
    end
    if any then row(cells) end
  end
  for _, o in ipairs(ood_rows(results)) do metric_row(analysis.display_name(o), function(r) return r.ood[o] end) end
  for _, s in ipairs(ATTACKED) do metric_row(s.label, function(r) return r.sets[s.set] end, s.set == "noise") end
  if has_worst then
    local what = {}
    for i, r in ipairs(results) do
      local w = r.worst
      if w then
        what[#what + 1] = string.format("%s: %s on the first %s noise points", names[i], w.attack or "no attack",
                                        tostring(math.tointeger(w.n) or w.n))
      end
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "AAUC and GAUC (Noise row): conservative AUROCs (ties count as failures) of the clean test "
      .. "set against the attacked confidences and the certified bounds (IBP) of the noise points ("
      .. table.concat(what, "; ") .. "); AUROC counts ties half, over all noise points."
  end
  local resist = {}
  for i, r in ipairs(results) do
    if r.resistance_adv == r.resistance_adv then
      resist[#resist + 1] = string.format("%s %.1f %%", names[i], 100 * r.resistance_adv)
    end
  end
  if #resist > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Resistance to adversarial samples (Adv. Samples use only the points not resisted): "
      .. table.concat(resist, ", ")
  end
  return table.concat(lines, "\n")
end

--- Table 1 in Markdown: one table per training set, the runs (named by names[i] or their
--- model_name) side by side in column groups MMC | AUROC | FPR@95.
function analysis.markdown(results, names)
  local order, groups = {}, {}
  for i, r in ipairs(results) do
    if not groups[r.dataset] then groups[r.dataset] = {results = {}, names = {}}; order[#order + 1] = r.dataset end
    local g = groups[r.dataset]
    g.results[#g.results + 1] = r
    g.names[#g.names + 1] = (names and names[i]) or r.name
  end
  local out = {}
  for _, d in ipairs(order) do out[#out + 1] = block(groups[d].results, groups[d].names) end
  local worst = worst_analysis.markdown(results, names)
  if worst ~= "" then out[#out + 1] = worst end
  local sc = require("umbra.scores_analysis").markdown(results, names)
  if sc ~= "" then out[#out + 1] = sc end
  return table.concat(out, "\n\n")
end

-- ---- pictures ----------------------------------------------------------------------------

--- The run's pictures in dir: conf_<set>.png histograms, rocs.png, top_<ood>.png grids of the
--- most confident OOD images. Returns the list of files, or nil, message (no gnuplot).
function analysis.plots(res, ev, dir)
  if not plot.available() then
    return nil, "gnuplot is not installed (apt-get install gnuplot-nox); no pictures were made"
  end
  local files = {}
  local function keep(path, ok, err)
    if not ok then error(err, 0) end
    files[#files + 1] = path
  end
  local ok, err = pcall(analysis.draw, res, ev, dir, keep)
  if not ok then return nil, err end
  return files
end

-- the pictures of analysis.plots; keep(path, plot results...) records a file or raises
function analysis.draw(res, ev, dir, keep)
  local sets = {"clean"}
  for _, s in ipairs(ATTACKED) do if res.conf[s.set] then sets[#sets + 1] = s.set end end
  for _, o in ipairs(res.ood_names) do sets[#sets + 1] = o end
  local label = {clean = analysis.display_name(res.dataset) .. " (clean)"}
  for _, s in ipairs(ATTACKED) do label[s.set] = s.label end
  for _, o in ipairs(res.ood_names) do label[o] = analysis.display_name(o) end
  for _, s in ipairs(sets) do
    if res.conf[s]:size(1) > 0 then
      local path = dir .. "/conf_" .. s .. ".png"
      keep(path, plot.histogram{path = path, values = res.conf[s]:to_table(), bins = 100, range = {0, 1}, logy = true,
                                title = string.format("%s: max confidence on %s", res.name, label[s]),
                                xlabel = "max confidence", ylabel = "count"})
    end
  end
  local series = {}
  for _, s in ipairs(sets) do
    if s ~= "clean" and res.conf[s]:size(1) > 0 then
      local fpr, tpr = eval.roc(res.conf.clean, res.conf[s])
      local m = res.sets[s] or res.ood[s]
      series[#series + 1] = {x = fpr:to_table(), y = tpr:to_table(), dashed = res.ood[s] ~= nil,
                             title = string.format("%s (AUROC %.3f)", label[s], m.auroc)}
    end
  end
  if #series > 0 then
    local path = dir .. "/rocs.png"
    keep(path, plot.lines{path = path, series = series, title = res.name .. ": ROC, " .. label.clean .. " positive",
                          xlabel = "false positive rate", ylabel = "true positive rate", xrange = {0, 1},
                          yrange = {0, 1}})
  end
  worst_analysis.draw(res, dir, keep)   -- the sorted per-point sandwich, when there is one
  for _, o in ipairs(res.ood_names) do
    local set = ev.ood[o]
    if set.images and set.images:size(1) > 0 then
      local conf = res.conf[o]:to_table()
      local rows = evalfile.image_rows(set, conf)
      local pred = set.probs:argmax(2):to_table()
      local titles = {}
      local names = analysis.class_names[res.dataset]
      for i, r in ipairs(rows) do
        local c = names and names[pred[r]] or ("class " .. pred[r])
        titles[i] = string.format("%s: %.1f%%", c, 100 * conf[r])
      end
      local path = dir .. "/top_" .. o .. ".png"
      keep(path, plot.image_grid{path = path, images = set.images:narrow(1, 1, #rows), titles = titles, columns = 8,
                                 title = string.format("%s: most confident %s images", res.name, label[o])})
    end
  end
end

--- Class names by data set, indexed by the 1-based label (MNIST's label 1 is the digit 0).
analysis.class_names = {
  mnist = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
  svhn = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
  fashion_mnist = {"T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"},
  cifar10 = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
}

return analysis
