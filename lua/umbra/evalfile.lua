-- umbra.evalfile: the evaluation file <run>/eval.h5 that recipes/evaluate.lua writes and
-- recipes/analyze.lua reads. One group per set: /clean, /noise, /noise_adv, /noise_adv_worst,
-- /adv and /ood/<name>, each with probs (n, K) float32 softmax outputs and labels (n) int64
-- (the true class 1..K for clean and adv, 0 otherwise); /ood/<name> may add images (m, C, H, W)
-- of its most confident points and image_index (m) int64, their rows in probs (1-based).
-- Root attributes: model_name, dataset, num_classes, test_error (a fraction), checkpoint,
-- and label_base = 1 (labels and image_index count from 1; subtract it for 0-based tools).
local core = require "umbra.core"

local evalfile = {}

--- The sets other than the OOD ones, in the order of the paper's tables.
evalfile.SETS = {"clean", "noise", "noise_adv", "noise_adv_worst", "adv"}

local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() end
  return f ~= nil
end

--- The file of a path: path itself, or <path>/eval.h5 for a run folder.
function evalfile.path(path)
  if is_dir(path) then return path .. "/eval.h5" end
  return path
end

--- evalfile.write(path, sets, attrs) -> true | nil, message. sets: {clean = {probs =,
--- labels =}, ..., ood = {<name> = {probs =, labels =, images =, image_index =}}}; attrs: the
--- root attributes (strings and numbers); label_base = 1 is added.
function evalfile.write(path, sets, attrs)
  local tensors, all_attrs = {}, {label_base = 1}
  for k, v in pairs(attrs or {}) do all_attrs[k] = v end
  for group, s in pairs(sets) do
    if group == "ood" then
      for name, o in pairs(s) do
        for field, t in pairs(o) do tensors["ood/" .. name .. "/" .. field] = t end
      end
    else
      for field, t in pairs(s) do tensors[group .. "/" .. field] = t end
    end
  end
  return core.h5_save(path, tensors, all_attrs)
end

local function check_set(where, s, K)
  if not s.probs or not s.labels then
    return string.format("%s lacks %s", where, s.probs and "labels" or "probs")
  end
  local ps, ls = s.probs:size(), s.labels:size()
  if #ps ~= 2 or s.probs:dtype() ~= "float32" then
    return string.format("%s/probs must be float32 (n, K), got %s %s", where, s.probs:dtype(), table.concat(ps, "x"))
  end
  if K and ps[2] ~= K then return string.format("%s/probs has %d columns, num_classes is %d", where, ps[2], K) end
  if #ls ~= 1 or ls[1] ~= ps[1] or s.labels:dtype() ~= "int64" then
    return string.format("%s/labels must be int64 (%d), got %s %s", where, ps[1], s.labels:dtype(),
                         table.concat(ls, "x"))
  end
end

--- evalfile.read(path) -> ev | nil, message. path: eval.h5 or its run folder. ev = {path =,
--- attrs = {...}, num_classes =, sets = {clean = {probs, labels}, ...}, ood = {<name> = {...}},
--- ood_names = {sorted}}; sets absent from the file are absent here (clean is required).
function evalfile.read(path)
  path = evalfile.path(path)
  local f = io.open(path, "rb")
  if not f then return nil, "cannot open " .. path .. " (run recipes/evaluate.lua first?)" end
  f:close()
  local r, err = core.h5_read(path)
  if not r then return nil, err end
  local ev = {path = path, attrs = r.attributes, sets = {}, ood = {}, ood_names = {}}
  for name, t in pairs(r.tensors) do
    local group, field = name:match("^(.*)/([^/]+)$")
    local ood = group and group:match("^ood/([^/]+)$")
    if ood then
      if not ev.ood[ood] then ev.ood[ood] = {}; ev.ood_names[#ev.ood_names + 1] = ood end
      ev.ood[ood][field] = t
    elseif group then
      ev.sets[group] = ev.sets[group] or {}
      ev.sets[group][field] = t
    end
  end
  table.sort(ev.ood_names)
  if not ev.sets.clean then return nil, path .. ": no /clean set (is this an evaluation file?)" end
  local K = math.tointeger(ev.attrs.num_classes)
  ev.num_classes = K or ev.sets.clean.probs and ev.sets.clean.probs:size(2)
  for _, group in ipairs(evalfile.SETS) do
    local s = ev.sets[group]
    local bad = s and check_set("/" .. group, s, ev.num_classes)
    if bad then return nil, path .. ": " .. bad end
  end
  for _, name in ipairs(ev.ood_names) do
    local bad = check_set("/ood/" .. name, ev.ood[name], ev.num_classes)
    if bad then return nil, path .. ": " .. bad end
  end
  return ev
end

--- The rows of probs shown in a picture grid of images: image_index when stored, else the
--- most confident rows, highest first (ties: the earlier row first). Returns a Lua array.
function evalfile.image_rows(set, conf)
  local m = set.images and set.images:size(1) or 0
  if set.image_index then return set.image_index:to_table() end
  local idx = {}
  for i = 1, #conf do idx[i] = i end
  table.sort(idx, function(a, b)
    if conf[a] ~= conf[b] then return conf[a] > conf[b] end
    return a < b
  end)
  local rows = {}
  for i = 1, math.min(m, #idx) do rows[i] = idx[i] end
  return rows
end

return evalfile
