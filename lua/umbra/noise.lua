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

--- Outlier Exposure: n images drawn uniformly with replacement from a data set ds (images
--- of the clean batch's sample shape), by the step's generator. opts.mix in [0, 1]: that
--- fraction of the n (rounded) comes from opts.noise (a schedule; default the authors')
--- instead, placed first.
function noise.schedule.outliers(ds, opts)
  opts = opts or {}
  local mix = opts.mix or 0
  if type(mix) ~= "number" or mix < 0 or mix > 1 then
    error("noise.schedule.outliers: mix must be a number in [0, 1], got " .. tostring(mix), 2)
  end
  if type(ds) ~= "table" or not ds.get or not ds.size then
    error("noise.schedule.outliers: expected a data set (umbra.data.load), got " .. type(ds), 2)
  end
  local size, shape = ds:size(), {ds:shape()}
  if size < 1 then error("noise.schedule.outliers: the outlier set is empty", 2) end
  local base = opts.noise or noise.schedule.authors()
  return function(ctx)
    if ctx.n <= 0 then return nil end
    local want = ctx.clean:size()
    if want[2] ~= shape[1] or want[3] ~= shape[2] or want[4] ~= shape[3] then
      error(string.format("noise.schedule.outliers: outlier images are %dx%dx%d, the clean ones %dx%dx%d",
                          shape[1], shape[2], shape[3], want[2], want[3], want[4]), 2)
    end
    local n_noise = math.floor(mix * ctx.n + 0.5)
    local parts = {}
    if n_noise > 0 then
      parts[1] = base{step = ctx.step, epoch = ctx.epoch, clean = ctx.clean, n = n_noise, generator = ctx.generator}
    end
    local n_out = ctx.n - n_noise
    if n_out > 0 then
      local u, imgs = core.rand({n_out}, ctx.generator):to_table(), {}
      for i = 1, n_out do imgs[i] = ds:get(math.min(size, math.floor(u[i] * size) + 1)):unsqueeze(1) end
      parts[#parts + 1] = core.cat(imgs, 1):to(ctx.clean:device())
    end
    return #parts == 1 and parts[1] or core.cat(parts, 1)
  end
end

return noise
