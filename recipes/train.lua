-- recipes/train.lua: train Plain, CEDA or ACET with the authors' flags (docs/method.md §2, the
-- authors' train.py), e.g.
--   umbra recipes/train.lua --dataset mnist --at_frac 1 --pgd_niter 40 --exp_name acet
-- Writes runs/<exp_name>/<timestamp>_<hyper-parameters>/ with config.lua, metrics.csv,
-- TensorBoard events (tb/train, tb/test), checkpoints (checkpoint.h5: the last one, and
-- checkpoint-<epoch>.h5 every --save_every epochs) and the log. --resume RUN_DIR
-- continues from the last checkpoint of that run; with the same threads the numbers are
-- those of an uninterrupted run.
-- Under `mpirun -np N` the same flags train data parallel (docs/distributed.md): the
-- global batch --batch_size split over the ranks, rank 0 writing logs and checkpoints.
local umbra = require "umbra"
local argparse = require "argparse"
local nn = require "umbra.nn"
local optim = require "umbra.optim"
local data = require "umbra.data"
local train = require "umbra.train"
local checkpoint = require "umbra.checkpoint"
local noise = require "umbra.noise"
local log = require "umbra.log"
local config_file = require "umbra.config"
local runfolder = require "umbra.runfolder"
local tb = require "umbra.tb"
local dist = require "umbra.dist"
local good = require "umbra.good"

local parser = argparse("train", "Train a classifier with Plain, CEDA or ACET (Hein et al., CVPR 2019)")
parser:option("--dataset", "mnist | fashion_mnist | svhn | cifar10 | cifar100", "mnist")
parser:option("--model", "lenet | resnet_small (default: lenet for MNIST-like sets, else resnet_small)")
parser:option("--loss", "noise loss: max_conf | uniform_conf", "max_conf")
parser:option("--outliers", "Outlier Exposure: draw the out-distribution part from this umbra data set (its training "
              .. "split, else its test split; e.g. gray_cifar10, lsun_classroom) or from a folder of PNG files "
              .. "(a path; resized, and gray for a one-channel model) instead of noise")
parser:option("--outlier_mix", "with --outliers: the fraction of the out-distribution part that stays noise", "0")
  :convert(tonumber)
parser:option("--good_eps", "GOOD: l-inf radius of the certified ball around the out-distribution points "
              .. "(0: off; GOOD's MNIST 0.3); the noise's loss is then GOOD's L_CUB, --pgd_niter must be 0", "0")
  :convert(tonumber)
parser:option("--good_quantile", "GOOD: the share of the noise (smallest bounds) trained on the bound; the rest "
              .. "on the clean logit spread (GOOD_q: 1 is GOOD_100)", "1"):convert(tonumber)
parser:option("--good_kappa", "GOOD: weight of the noise loss (mean CE + kappa * mean L_CUB)", "0.3"):convert(tonumber)
parser:option("--good_ramp", "GOOD: kappa_start,kappa_epochs,eps_start,eps_epochs: linear ramps from 0 over "
              .. "epochs counted from 0 (GOOD's MNIST: 2,100,10,120)", "2,100,10,120")
parser:flag("--good_ramp_per_step", "GOOD: read the ramps at the fractional epoch of each step (smooth, for "
            .. "compressed schedules) instead of once per epoch as GOOD's code")
parser:option("--init", "start from the weights of this checkpoint (GOOD's CEDA warm start); the optimiser "
              .. "and the epochs start afresh")
parser:option("--opt", "adam | momentum (default: adam for MNIST-like sets, else momentum)")
parser:option("--lr", "initial learning rate (default: 1e-3 with adam, 0.1 with momentum)"):convert(tonumber)
parser:option("--lmbd", "weight decay: lmbd * sum of squared weights", "0.0005"):convert(tonumber)
parser:option("--n_epochs", "epochs; the learning rate drops x0.1 after 50%, 75%, 90% of the steps", "100")
  :convert(tonumber)
parser:option("--batch_size", "clean examples per step", "128"):convert(tonumber)
parser:option("--at_frac", "noise examples per clean example (0: plain)", "0"):convert(tonumber)
parser:option("--pgd_niter", "PGD iterations on the noise (0: CEDA, > 0: ACET)", "0"):convert(math.tointeger)
parser:option("--pgd_eps", "l-inf radius of the ACET ball", "0.3"):convert(tonumber)
parser:option("--frac_perm", "fraction of permuted-image noise (the rest is uniform)", "0.5"):convert(tonumber)
parser:option("--exp_name", "experiment name: runs/<exp_name>/", "default")
parser:option("--seed", "seed of initialisation, data order, augmentation and noise", "1"):convert(math.tointeger)
parser:option("--device", "cpu | cuda", "cpu")
parser:option("--resume", "continue the run in this folder from its last checkpoint")
parser:option("--data_dir", "data folder (default $UMBRA_DATA or data/)")
parser:option("--threads", "CPU threads", "2"):convert(math.tointeger)
parser:option("--max_steps", "stop after this many optimiser steps (smoke runs)"):convert(math.tointeger)
parser:option("--n_train", "use only the first n training images"):convert(math.tointeger)
parser:option("--n_test", "evaluate on the first n test images"):convert(math.tointeger)
parser:option("--save_every", "checkpoint every n epochs (and at the end)", "10"):convert(math.tointeger)
parser:option("--stop_epoch", "stop (with a checkpoint) after this epoch, to be resumed later"):convert(math.tointeger)
parser:option("--runs_dir", "where run folders go", "runs")
parser:option("--noise_streams", "with several ranks: rank (each rank its own noise stream) | global "
              .. "(every rank makes the whole batch's noise, as one process: exact, for tests)", "rank")
parser:flag("--sync_bn", "with several ranks: batch norms use the statistics of the global batch "
            .. "(default: each rank its own, as the authors' multi-GPU towers)")
parser:option("--bucket_mb", "with several ranks on CPUs: sum the gradients in buckets of this many MB, each "
              .. "started during the backward as soon as its gradients are computed (0: one allreduce after it)",
              "0"):convert(tonumber)
local args = parser:parse(arg)
local rank, nranks = dist.init()

-- resuming: the run's own configuration wins over the command line, except what may change;
-- the folder is locked first, so that two trainings never share it
local run_dir, folder_lock
if args.resume then
  run_dir = args.resume
  if dist.is_main() then   -- rank 0 alone writes the folder
    local lerr
    folder_lock, lerr = runfolder.lock(run_dir)
    if not folder_lock then io.stderr:write("train: --resume ", lerr, "\n"); os.exit(1) end
  end
  local saved, cerr = config_file.read(run_dir .. "/config.lua")
  if not saved then io.stderr:write("train: --resume ", cerr, "\n"); os.exit(1) end
  local keep = {resume = true, threads = true, device = true, data_dir = true, max_steps = true, stop_epoch = true,
                noise_streams = true, sync_bn = true, bucket_mb = true}
  for k, v in pairs(saved) do if not keep[k] then args[k] = v end end
end

local mnist_like = {mnist = true, fashion_mnist = true}
if not (mnist_like[args.dataset] or args.dataset == "svhn" or args.dataset == "cifar10"
        or args.dataset == "cifar100") then
  parser:error("--dataset must be mnist, fashion_mnist, svhn, cifar10 or cifar100, got " .. args.dataset)
end
args.model = args.model or (mnist_like[args.dataset] and "lenet" or "resnet_small")
args.opt = args.opt or (mnist_like[args.dataset] and "adam" or "momentum")
args.lr = args.lr or (args.opt == "adam" and 1e-3 or 0.1)
if args.opt ~= "adam" and args.opt ~= "momentum" then parser:error("--opt must be adam or momentum") end
if args.loss ~= "max_conf" and args.loss ~= "uniform_conf" then
  parser:error("--loss must be max_conf or uniform_conf")
end
if args.model ~= "lenet" and args.model ~= "resnet_small" then parser:error("--model must be lenet or resnet_small") end
-- every numeric flag checked before any work (a zero batch size or --save_every would
-- only fail after a whole epoch)
local function check_number(name, min, integer, max)
  local v = args[name]
  if v == nil and (name == "max_steps" or name == "n_train" or name == "n_test" or name == "stop_epoch") then return end
  if type(v) ~= "number" or v ~= v or v < min or (max and v > max) or v == math.huge
     or (integer and math.type(v) ~= "integer" and v ~= math.floor(v)) then
    parser:error(string.format("--%s must be %s %s %g%s, got %s", name, integer and "an integer" or "a number",
                               ">=", min, max and string.format(" and <= %g", max) or "", tostring(v)))
  end
  if integer then args[name] = math.tointeger(v) end
end
for _, c in ipairs{{"lr", 0}, {"lmbd", 0}, {"n_epochs", 1, true}, {"batch_size", 1, true}, {"at_frac", 0},
                   {"pgd_niter", 0, true}, {"pgd_eps", 0}, {"frac_perm", 0, false, 1}, {"seed", 0, true},
                   {"threads", 1, true}, {"max_steps", 1, true}, {"n_train", 1, true}, {"n_test", 1, true},
                   {"save_every", 1, true}, {"stop_epoch", 1, true}, {"good_eps", 0}, {"good_quantile", 0, false, 1},
                   {"good_kappa", 0}} do
  check_number(c[1], c[2], c[3], c[4])
end
if args.lr == 0 then parser:error("--lr must be > 0, got 0") end
if args.good_eps > 0 and (args.pgd_niter > 0 or args.at_frac <= 0) then
  parser:error("--good_eps needs out-distribution points and no PGD: --at_frac > 0 and --pgd_niter 0")
end
if args.noise_streams ~= "rank" and args.noise_streams ~= "global" then
  parser:error("--noise_streams must be rank or global")
end
if args.sync_bn and nranks > 1 and args.device ~= "cpu" then
  parser:error("--sync_bn runs on CPU tensors only; on GPUs each rank normalises with its own statistics")
end
if not args.bucket_mb or args.bucket_mb < 0 then parser:error("--bucket_mb must be a number >= 0") end
if args.bucket_mb > 0 and nranks > 1 and args.device ~= "cpu" then
  parser:error("--bucket_mb runs on CPUs; on GPUs the gradients go in one flat call (NCCL or MPI)")
end
if args.batch_size < nranks then
  parser:error(string.format("--batch_size %d is smaller than the %d ranks", args.batch_size, nranks))
end
umbra.set_num_threads(args.threads)
dist.sync_batchnorm(args.sync_bn)

local function fail(msg)
  io.stderr:write("train: ", nranks > 1 and string.format("rank %d: ", rank) or "", msg, "\n")
  os.exit(1)
end

local train_set, terr = data.load(args.dataset, {split = "train", dir = args.data_dir, limit = args.n_train})
if not train_set then fail(terr or "cannot load the training set") end
local test_set, err = data.load(args.dataset, {split = "test", dir = args.data_dir, limit = args.n_test})
if not test_set then fail(err or "cannot load the test set") end
local outlier_set
if args.outliers then
  local C0, H0, W0 = test_set:shape()
  local oerr
  if args.outliers:find("/", 1, true) then   -- a path: a folder of PNG files
    outlier_set, oerr = data.load_folder(args.outliers, {size = {H0, W0}, channels = C0 == 1 and 1 or 3})
  else
    for _, split in ipairs{"train", "test"} do
      local ok, ds, e = pcall(data.load, args.outliers, {split = split, dir = args.data_dir, size = {H0, W0}})
      if ok and ds then outlier_set = ds; break end
      oerr = ok and e or ds
    end
  end
  if not outlier_set then fail("--outliers: " .. tostring(oerr)) end
  local c, h, w = outlier_set:shape()
  if c ~= C0 or h ~= H0 or w ~= W0 then
    fail(string.format("--outliers: %s images are %dx%dx%d, the model takes %dx%dx%d", args.outliers, c, h, w,
                       C0, H0, W0))
  end
  if not (args.outlier_mix >= 0 and args.outlier_mix <= 1) then
    fail("--outlier_mix: expected a fraction in [0, 1], got " .. tostring(args.outlier_mix))
  end
end

-- the run folder: time stamp, data set and model, short enough to read; the
-- hyper-parameters are in its config.lua and TensorBoard's text summary "config"
if not run_dir then
  run_dir = string.format("%s/%s/%s_%s_%s", args.runs_dir, args.exp_name, os.date("%Y-%m-%d_%H-%M-%S"), args.dataset,
                          args.model)
  if dist.is_main() then
    os.execute("mkdir -p '" .. run_dir:gsub("'", "'\\''") .. "'")
    local lerr
    folder_lock, lerr = runfolder.lock(run_dir)
    if not folder_lock then fail(lerr) end
  end
end
-- temporary files of processes killed while saving
for _, name in ipairs(dist.is_main() and runfolder.clean_stale(run_dir) or {}) do
  io.stderr:write("train: removed ", name, " (left by a killed run)\n")
end

if args.device == "cuda" and nranks > 1 then dist.pick_local_gpu() end   -- before CUDA loads
local g = umbra.Generator(args.seed)
local run_init
local model = require("models." .. args.model){num_classes = train_set.num_classes, generator = g}
if args.device ~= "cpu" then model:to(args.device) end
-- gradients on GPUs: NCCL on the device when every rank has it, else MPI on host copies
local collectives = nranks > 1 and args.device ~= "cpu" and dist.device_collectives() or nil
-- weight decay as the authors: every parameter whose name contains weight/fc/conv, i.e.
-- for ResNetSmall the conv kernels and the dense layer (not batch norm), for LeNet all
local decay = model:parameters(function(path) return not path:find("bn") end)
if args.init and not args.resume then
  -- a warm start (GOOD starts CIFAR-10 from a CEDA model): weights only, checked by name and shape
  local info, ierr = checkpoint.load(args.init, {model = model})
  if not info then fail("--init: " .. tostring(ierr)) end
  run_init = string.format("weights from %s (%s, epoch %s)", args.init, tostring(info.architecture),
                           tostring(info.epoch))
end
dist.broadcast_module(model)   -- identical already (same seed); made sure of
local params = model:parameters()
local opt = args.opt == "adam" and optim.Adam(params, {lr = args.lr})
            or optim.SGD(params, {lr = args.lr, momentum = 0.9})

local steps_per_epoch = train_set:size() // args.batch_size
if steps_per_epoch < 1 then fail("the training set is smaller than one batch") end
local total_steps = steps_per_epoch * args.n_epochs
local schedule, boundaries = optim.paper_schedule(args.lr, total_steps)

local config = {}
for k, v in pairs(args) do config[k] = v end
config.architecture, config.num_classes, config.steps_per_epoch = args.model, train_set.num_classes, steps_per_epoch

local start_epoch, step = 1, 0
if args.resume then
  local info, lerr = checkpoint.load(run_dir .. "/checkpoint.h5", {model = model, optim = opt, generator = g})
  if not info then fail(lerr) end
  start_epoch, step = info.epoch + 1, info.step
  dist.broadcast_module(model)
end
if args.resume and dist.is_main() then
  -- a kill between the metrics row and the checkpoint's rename left rows of later epochs
  local rows, events = runfolder.trim(run_dir, start_epoch - 1)
  if rows + events > 0 then
    io.stderr:write(string.format("train: dropped %d metrics rows and %d TensorBoard events after epoch %d\n",
                                  rows, events, start_epoch - 1))
  end
  -- the periodic copy of that epoch, when a kill came before it was written
  local periodic = string.format("%s/checkpoint-%d.h5", run_dir, start_epoch - 1)
  if (start_epoch - 1) % args.save_every == 0 and not io.open(periodic) then
    local ok, serr = checkpoint.save(periodic, {model = model, optim = opt, generator = g, epoch = start_epoch - 1,
                                                step = step, config = config})
    if not ok then fail(serr) end
  end
end
local columns = {"epoch", "train_err", "train_loss_clean", "train_loss_noise", "train_loss_total", "train_reg",
                 "train_conf_clean", "train_conf_noise", "test_err", "test_loss_clean", "test_conf_clean",
                 "test_conf_noise", "lr", "seconds"}
local run <close> = dist.main_only(function()
  return log.open(run_dir, {columns = columns, append = args.resume ~= nil})
end)
if nranks > 1 then
  local extra = args.batch_size % nranks
  run:print("%d ranks x %d threads per rank; global batch %d (%d per rank%s), noise streams: %s, batch norm: %s%s",
            nranks, umbra.get_num_threads(), args.batch_size, args.batch_size // nranks,
            extra > 0 and string.format(", the first %d ranks one more", extra) or "",
            args.noise_streams, args.sync_bn and "global statistics" or "per-rank statistics",
            collectives and "; gradients: " .. collectives
              or args.bucket_mb > 0
                 and string.format("; gradients: buckets of %g MB during the backward", args.bucket_mb)
              or "; gradients: one allreduce after the backward")
end
if not args.resume and dist.is_main() then
  config_file.write(run_dir .. "/config.lua", config)
  -- the hyper-parameters as a Markdown table (TensorBoard's text tab)
  local keys, rows = {}, {"| option | value |", "|---|---|"}
  for k in pairs(config) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do rows[#rows + 1] = string.format("| %s | %s |", k, tostring(config[k])) end
  run.tb_train:value(0, tb.text_value("config", table.concat(rows, "\n")))
end
run:print("%s %s: %s, %d training / %d test images, %d steps per epoch, lr boundaries %s",
          args.resume and "resuming" or "run", run_dir, tostring(train_set), train_set:size(), test_set:size(),
          steps_per_epoch, table.concat(boundaries, "/"))

-- GOOD: kappa and eps ramps per epoch (GOOD's epochs count from 0)
local good_settings, good_ramp
if args.good_eps > 0 then
  local r = {}
  good_ramp = r
  for v in tostring(args.good_ramp):gmatch("[^,]+") do r[#r + 1] = tonumber(v) end
  if #r ~= 4 or r[2] < 0 or r[4] < 0 then
    fail("--good_ramp: expected kappa_start,kappa_epochs,eps_start,eps_epochs (epochs >= 0), got " .. args.good_ramp)
  end
  good_settings = {eps = good.ramp(args.good_eps, r[3], r[4]), weight = good.ramp(args.good_kappa, r[1], r[2]),
                   quantile = args.good_quantile}
end

if run_init then run:print("init: %s", run_init) end
if good_settings then
  run:print("GOOD: eps %g ramped from epoch %g over %g, kappa %g from epoch %g over %g (epochs from 0), quantile %g; "
            .. "the noise is the out-distribution", args.good_eps, good_ramp[3], good_ramp[4], args.good_kappa,
            good_ramp[1], good_ramp[2], args.good_quantile)
end

local proc = train.Procedure(model, opt, {
  good = good_settings,
  at_frac = args.at_frac, pgd_niter = args.pgd_niter, pgd_eps = args.pgd_eps, loss = args.loss,
  lmbd = args.lmbd, decay_params = decay, generator = g,
  noise_schedule = outlier_set and noise.schedule.outliers(outlier_set, {
    mix = args.outlier_mix, noise = noise.schedule.authors{frac_perm = args.frac_perm}})
    or noise.schedule.authors{frac_perm = args.frac_perm},
  dist = nranks > 1 and {noise = args.noise_streams, sync_bn = args.sync_bn, bucket_mb = args.bucket_mb} or nil,
})
proc.step_count = step

-- clean test error, loss and confidence, plus the confidence on noise made from test images
local function evaluate_test()
  model:evaluate()
  local ce = nn.CrossEntropy{reduction = "sum"}
  local n, wrong, loss, conf, conf_noise = 0, 0, 0, 0, 0
  local confs_clean, confs_noise = {}, {}
  local g_eval = umbra.Generator(args.seed + 12345)   -- the same noise at every epoch
  -- the training batch size: module buffers then keep the size training uses (evaluation
  -- mode makes the results independent of it). Several ranks take the batches in turn;
  -- each still draws every batch's noise, so that the noise is the one process's.
  local b = 0
  for x, y in test_set:batches{batch_size = args.batch_size} do
    b = b + 1
    local z = noise.authors(x, g_eval, {frac_perm = args.frac_perm})
    if dist.owns(b) then
      local logits = model:forward(x)
      loss = loss + ce:forward(logits, y)
      wrong = wrong + logits:argmax(2):ne(y):sum()
      local c = logits:softmax(2):max(2)
      conf = conf + c:sum()
      local cn = model:forward(z):softmax(2):max(2)
      conf_noise = conf_noise + cn:sum()
      for _, v in ipairs(c:to_table()) do confs_clean[#confs_clean + 1] = v end
      for _, v in ipairs(cn:to_table()) do confs_noise[#confs_noise + 1] = v end
      n = n + x:size(1)
    end
  end
  model:train()
  if nranks > 1 then
    n, wrong, loss, conf, conf_noise = table.unpack(dist.sum_numbers{n, wrong, loss, conf, conf_noise})
    confs_clean, confs_noise = dist.allgather_numbers(confs_clean), dist.allgather_numbers(confs_noise)
  end
  return wrong / n, loss / n, conf / n, conf_noise / n, confs_clean, confs_noise
end

-- the optimiser steps this invocation will take, for the time left to its end
local last_epoch = math.min(args.n_epochs, args.stop_epoch or args.n_epochs)
local run_steps = math.max(0, last_epoch - start_epoch + 1) * steps_per_epoch
if args.max_steps then run_steps = math.max(0, math.min(run_steps, args.max_steps - step)) end
local steps_done = 0
run:begin_progress(run_steps)

local stop = false
for epoch = start_epoch, args.n_epochs do
  if stop then break end
  run:start_epoch()
  local t0 = umbra.core.clock()
  local sums, count = {err = 0, loss_clean = 0, loss_out = 0, loss = 0, reg = 0, conf_clean = 0, conf_noise = 0}, 0
  local done = 0
  local good_stats = {share = 0, m = 0}
  for x, y in train_set:batches{batch_size = args.batch_size, shuffle = true, generator = g, drop_last = true,
                                augment = true} do
    opt.lr = schedule(step)
    if good_settings and args.good_ramp_per_step then good_settings.epoch_progress = step / steps_per_epoch end
    local ok, s = pcall(proc.step, proc, x, y, epoch)
    step = step + 1
    -- the core refuses NaN logits with an error; a finite step can still report inf or NaN
    local bad = not ok and tostring(s):match("NaN") and "NaN"
                or (ok and (s.loss ~= s.loss or math.abs(s.loss) == math.huge) and tostring(s.loss))
    if not ok and tostring(s):find("non-finite", 1, true) then
      -- Procedure:step refused a non-finite loss or gradient before the optimiser wrote anything
      run:print("stopping: %s (epoch %d); the last good checkpoint is kept", tostring(s), epoch)
      run:close()
      os.exit(2)
    elseif bad then
      run:print("stopping: the loss is %s at step %d (epoch %d); the last good checkpoint is kept", bad, step, epoch)
      run:close()
      os.exit(2)
    end
    if not ok then error(s, 0) end
    for k in pairs(sums) do sums[k] = sums[k] + (s[k] or 0) end
    if good_settings then
      good_stats.eps, good_stats.weight = s.good_eps, s.good_weight
      good_stats.share, good_stats.m = good_stats.share + (s.good_bound_share or 0), good_stats.m + (s.good_m or 0)
    end
    count = count + 1
    done = done + 1
    steps_done = steps_done + 1
    run:step_scalars(step, {loss = s.loss, err = s.err, conf_clean = s.conf_clean, conf_noise = s.conf_noise,
                            lr = opt.lr})
    run:progress(steps_done, run_steps, string.format("epoch %d step %d/%d loss %.4f err %.3f", epoch, done,
                                                      steps_per_epoch, s.loss, s.err))
    if args.max_steps and step >= args.max_steps then stop = true; break end
  end
  local test_err, test_loss, test_conf, test_conf_noise, confs_clean, confs_noise = evaluate_test()
  run.tb_test:value(epoch, tb.histogram_value("confidence/clean", confs_clean))
  run.tb_test:value(epoch, tb.histogram_value("confidence/noise", confs_noise))
  local seconds = umbra.core.clock() - t0
  local row = {epoch = epoch, train_err = sums.err / count, train_loss_clean = sums.loss_clean / count,
               train_loss_noise = sums.loss_out / count, train_loss_total = sums.loss / count,
               train_reg = sums.reg / count, train_conf_clean = sums.conf_clean / count,
               train_conf_noise = args.at_frac > 0 and sums.conf_noise / count or nil,
               test_err = test_err, test_loss_clean = test_loss, test_conf_clean = test_conf,
               test_conf_noise = test_conf_noise, lr = opt.lr, seconds = seconds}
  run:metrics(row, epoch)
  run:print("Epoch %d training is done, %.1f sec: train err %.4f, loss %.4f; test err %.4f, conf clean %.3f, "
            .. "conf noise %.3f%s",
            epoch, seconds, row.train_err, row.train_loss_total, test_err, test_conf, test_conf_noise,
            good_settings and string.format("; GOOD eps %.4g kappa %.4g, bound share %.2f, mean max bound diff %.3f",
                                            good_stats.eps or 0, good_stats.weight or 0,
                                            good_stats.share / math.max(count, 1), good_stats.m / math.max(count, 1))
            or "")
  if args.stop_epoch and epoch >= args.stop_epoch then stop = true end
  local last = epoch == args.n_epochs or stop
  if (epoch % args.save_every == 0 or last) and dist.is_main() then
    local state = {model = model, optim = opt, generator = g, epoch = epoch, step = step, config = config}
    local ok, serr = checkpoint.save(run_dir .. "/checkpoint.h5", state)
    if not ok then fail(serr) end
    if epoch % args.save_every == 0 then
      assert(checkpoint.save(string.format("%s/checkpoint-%d.h5", run_dir, epoch), state))
    end
  end
end
run:print("Worker done: %s", run_dir)
if folder_lock then folder_lock:release() end
