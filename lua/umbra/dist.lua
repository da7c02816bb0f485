-- umbra.dist: data parallelism over MPI (docs/distributed.md). init() is idempotent and
-- works with and without a launcher: `build/umbra x.lua` is one rank, `mpirun -np N
-- build/umbra x.lua` N ranks. Collectives act in place on tensors (any device, through
-- host copies); allreduce_grads reduces a model's gradients in one MPI call. Errors name
-- the MPI call and the rank. A rank that exits with a non-zero status stops the job.
local core = require "umbra.core"

local dist = {}

local info = core.dist_info()

--- rank, size = dist.init(): join the job (MPI_Init under a launcher, else one rank).
function dist.init()
  local rank, size = core.dist_init()
  info = core.dist_info()
  return rank, size
end

function dist.initialized() return info.initialized end
function dist.rank() return info.rank end
function dist.size() return info.size end
function dist.local_rank() return info.local_rank end
function dist.local_size() return info.local_size end
--- Whether MPI runs this process (true for `mpirun -np 1` as well).
function dist.uses_mpi() return info.mpi end
function dist.is_main() return info.rank == 0 end
function dist.barrier() core.dist_barrier() end

--- dist.allreduce(t [, op]) -> t: op "sum" (default), "mean" or "max" over ranks, in place.
function dist.allreduce(t, op) return core.dist_allreduce(t, op) end

--- dist.broadcast(t [, root]) -> t: root's (default 0) contents on every rank.
function dist.broadcast(t, root) return core.dist_broadcast(t, root or 0) end

--- dist.allgather(t) -> the ranks' t concatenated along dimension 1, in rank order.
function dist.allgather(t) return core.dist_allgather(t) end

--- dist.sync_batchnorm(on): batch norms in training mode normalise with the statistics of
--- all ranks' batches (true) or with their own (false, the default). CPU tensors only.
function dist.sync_batchnorm(on) core.dist_sync_batchnorm(on) end

--- dist.pick_local_gpu() -> device id or nil: one GPU per rank on a machine (the local
--- rank's, modulo the GPUs present), by CUDA_VISIBLE_DEVICES; call it before anything
--- uses CUDA (the CUDA library reads it once, when it loads).
function dist.pick_local_gpu() return core.dist_pick_local_gpu() end

--- dist.device_collectives() -> how: every rank calls it once its GPU is chosen (and the
--- model on it); from then on collectives on device tensors go through NCCL on the device
--- when every rank can load libnccl.so.2 ($UMBRA_NCCL_LIB), else through MPI on host
--- copies. how says which ("NCCL 2.28.9 on the device", "MPI on host copies (no NCCL: ...)").
--- UMBRA_NCCL=off never uses NCCL, UMBRA_NCCL=require fails without it; an NCCL that is
--- there but unusable (too old, a communicator that cannot be made) is an error on every rank.
function dist.device_collectives() return core.dist_device_collectives() end

--- dist.abort(message [, code]): stop every rank now, saying which rank and why.
function dist.abort(message, code) core.dist_abort(message, code) end

local grad_lists = setmetatable({}, {__mode = "k"})

--- dist.module_buffers(model) -> the model's buffers (batch norm statistics) in the tree's
--- order, which is the same on every rank.
function dist.module_buffers(model)
  local _, tensors = core.nn_core.methods.named_tensors(model, "buffers")
  return tensors
end

--- dist.allreduce_grads(what [, op]): tensors reduced ("sum" by default) in one flat
--- buffer, one MPI call. what: a module (its parameter gradients), a parameter list with
--- .grads (those), or a plain list of tensors.
function dist.allreduce_grads(what, op)
  local list = not core.nn_core.is_module(what) and what.grads or nil
  if core.nn_core.is_module(what) then
    list = grad_lists[what]
    if not list then
      list = what:gradients()
      grad_lists[what] = list
    end
  end
  core.dist_allreduce_many(list or what, op or "sum")
end

--- b = dist.buckets(grads, extra, bucket_mb): the bucketed allreduce (sums) of a list of CPU
--- gradients, overlapping the backward pass: buckets of at most bucket_mb MB in the
--- backward's order, each started (MPI_Iallreduce) as soon as the backward has computed its
--- gradients; extra (tensors final before the backward: batch-norm statistics) is a bucket
--- started by arm. b:arm() before the backward that completes the gradients, b:finish()
--- after it (waits, writes the sums; returns how many buckets started during the backward),
--- b:count(). The flat allreduce_grads is one blocking call after the backward instead.
function dist.buckets(grads, extra, bucket_mb)
  assert(type(bucket_mb) == "number" and bucket_mb > 0, "dist.buckets: bucket_mb must be a number > 0, got "
         .. tostring(bucket_mb))
  return core.dist_buckets(grads, extra or {}, math.max(4, math.floor(bucket_mb * 1024 * 1024)))
end

--- dist.broadcast_module(model [, root]): root's parameters and buffers on every rank.
function dist.broadcast_module(model, root)
  if info.size == 1 then return end
  for _, t in ipairs(model:parameters()) do core.dist_broadcast(t, root or 0) end
  for _, t in ipairs(dist.module_buffers(model)) do core.dist_broadcast(t, root or 0) end
end

--- first, count = dist.split(n [, rank, size]): the block of n items that `rank` takes
--- (1-based first): blocks in rank order, the first n % size ranks one item more.
function dist.split(n, rank, size)
  rank, size = rank or info.rank, size or info.size
  local base, extra = n // size, n % size
  local count = base + (rank < extra and 1 or 0)
  local first = rank * base + math.min(rank, extra) + 1
  return first, count
end

--- dist.sum_numbers({a, b, ...}) -> {Σa, Σb, ...} over ranks, in one call (float32
--- precision: for metrics; counts are exact up to 2^24).
function dist.sum_numbers(values)
  if info.size == 1 then return values end
  local n = #values
  local t = core.zeros({n})
  for i = 1, n do t[i] = values[i] end
  core.dist_allreduce(t, "sum")
  local out = {}
  for i = 1, n do out[i] = t[i] end
  return out
end

--- dist.owns(b): whether batch b (1-based) is this rank's when batches are dealt out in
--- turn (batch b to rank (b - 1) mod size).
function dist.owns(b) return (b - 1) % info.size == info.rank end

--- dist.gather_batches(parts, batches, tail) -> one tensor on every rank: this rank's
--- tensors parts[i] (rows of batch number batches[i]) and every other rank's, concatenated
--- in batch order. tail: the sizes after the first dimension (for a rank with no parts).
function dist.gather_batches(parts, batches, tail)
  if info.size == 1 then return core.cat(parts, 1) end
  local desc = {}
  for i, p in ipairs(parts) do desc[#desc + 1] = {batches[i], p:size(1)} end
  local shape = {0}
  for i, s in ipairs(tail) do shape[i + 1] = s end
  local dtype = #parts > 0 and parts[1]:dtype() or nil
  local mine = #parts > 0 and core.cat(parts, 1) or core.zeros(shape, dtype)
  local all = core.dist_allgather(mine)
  local d = core.dist_allgather(#desc > 0 and core.tensor(desc, "int64") or core.zeros({0, 2}, "int64"))
  local pieces, at = {}, 1
  for i = 1, d:size(1) do
    local rows = d[i][2]
    pieces[#pieces + 1] = {batch = d[i][1], at = at, rows = rows}
    at = at + rows
  end
  table.sort(pieces, function(a, b) return a.batch < b.batch end)
  local out = {}
  for i, p in ipairs(pieces) do out[i] = all:narrow(1, p.at, p.rows) end
  return #out > 0 and core.cat(out, 1) or all
end

--- dist.allgather_numbers(values) -> every rank's values (Lua numbers, exact: they travel
--- as their 64 bits), concatenated in rank order.
function dist.allgather_numbers(values)
  if info.size == 1 then return values end
  local bits = {}
  for i, v in ipairs(values) do bits[i] = string.unpack("j", string.pack("d", v)) end
  local t = core.dist_allgather(#bits > 0 and core.tensor(bits, "int64") or core.zeros({0}, "int64"))
  local out = {}
  for i = 1, t:size(1) do out[i] = string.unpack("d", string.pack("j", t[i])) end
  return out
end

--- A stand-in for objects only rank 0 keeps (log files, writers): on other ranks every
--- method, and every method of every field, does nothing.
local nothing = setmetatable({}, {__call = function() end, __close = function() end})
getmetatable(nothing).__index = function() return nothing end
function dist.main_only(make)
  if info.rank == 0 then return make() end
  return nothing
end

return dist
