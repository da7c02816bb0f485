-- umbra.noise: the out-of-distribution noise of CEDA/ACET (docs/method.md §3) and noise
-- schedules. A schedule is a function(ctx) -> noise batch, called once per training step
-- with ctx = {step=, epoch=, clean=, n=, generator=}; recipes may pass their own.
local core = require "umbra.core"

local noise = {}

--- x filled with U[0,1] noise in place (returns x).
function noise.uniform_(x, g) return core.noise_uniform_(x, g) end

--- Each image's H*W pixel locations permuted, colour vectors kept (new tensor).
function noise.permute_pixels(x, g) return core.noise_permute_pixels(x, g) end

--- 15x15 Gaussian low-pass with std sigma on the symmetric mirror-padded image (new tensor).
function noise.lowpass(x, sigma) return core.noise_lowpass(x, sigma) end

--- Per-image min-max rescale to [0,1] in place (returns x).
function noise.rescale_(x) return core.noise_rescale_(x) end

--- The authors' training noise from a clean batch: the first floor(N*frac_perm) images
--- permuted, the rest uniform, one sigma ~ U[sigma_lo, sigma_hi] per batch, low-pass,
--- rescale. Returns the noise and the sigma used.
function noise.authors(clean, g, opts)
  opts = opts or {}
  return core.noise_authors(clean, g, opts.frac_perm or 0.5, opts.sigma_lo or 1.0, opts.sigma_hi or 2.5)
end

noise.schedule = {}

--- The authors' schedule: n noise images built from the first n rows of [x; x; x]
--- (at_frac may exceed 1, as in train.py).
function noise.schedule.authors(opts)
  opts = opts or {}
  return function(ctx)
    local x, n = ctx.clean, ctx.n
    local b = x:size(1)
    if n <= 0 then return nil end
    local src
    if n <= b then
      src = x:narrow(1, 1, n):contiguous()
    else
      local parts = {}
      for i = 1, math.ceil(n / b) do parts[i] = x end
      src = core.cat(parts, 1):narrow(1, 1, n):contiguous()
    end
    return (noise.authors(src, ctx.generator, opts))
  end
end

--- Plain U[0,1]^d noise of the clean batch's sample shape (any dimensionality).
function noise.schedule.uniform()
  return function(ctx)
    if ctx.n <= 0 then return nil end
    local size = ctx.clean:size()
    size[1] = ctx.n
    return core.rand(size, ctx.generator)
  end
end

return noise
