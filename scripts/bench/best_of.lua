-- The timing rule of umbra's benchmark scripts: one warm-up call, then the best (least
-- disturbed) of reps timed calls, in seconds.
--   local best_of = dofile("scripts/bench/best_of.lua"); local s = best_of(5, function() ... end)
local now = require("umbra.core").clock

return function(reps, fn)
  fn()
  local best = math.huge
  for _ = 1, reps do
    local t0 = now()
    fn()
    best = math.min(best, now() - t0)
  end
  return best
end
