-- umbra.suggest: "did you mean" for misspelt names. did_you_mean(name, candidates) gives
-- " (did you mean 'x'?)" for the closest candidate within a small edit distance, else "".
local suggest = {}

--- suggest.distance(a, b) -> the edit distance (insertions, deletions, substitutions and
--- swaps of neighbours) between two strings
function suggest.distance(a, b)
  local prev2, prev = nil, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if prev2 and i > 1 and j > 1 and a:sub(i, i) == b:sub(j - 1, j - 1)
        and a:sub(i - 1, i - 1) == b:sub(j, j) then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev = prev, cur
  end
  return prev[#b]
end

--- suggest.closest(name, candidates) -> the candidate nearest to name (ties: the first
--- in sorted order) if it is close enough to be a slip (at most a third of the letters
--- wrong, at least 1), else nil
function suggest.closest(name, candidates)
  local sorted = {}
  for _, c in ipairs(candidates) do sorted[#sorted + 1] = tostring(c) end
  table.sort(sorted)
  local best, best_d = nil, math.max(1, #name // 3) + 1
  for _, c in ipairs(sorted) do
    local d = suggest.distance(name:lower(), c:lower())
    if d < best_d then best, best_d = c, d end
  end
  return best
end

--- suggest.did_you_mean(name, candidates) -> " (did you mean 'x'?)" or ""
function suggest.did_you_mean(name, candidates)
  local c = suggest.closest(tostring(name), candidates)
  return c and string.format(" (did you mean '%s'?)", c) or ""
end

return suggest
