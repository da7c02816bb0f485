-- umbra.eval: the paper's evaluation metrics (docs/method.md §6.2, §11.5) on softmax outputs:
-- max confidence, MMC, AUROC (in-distribution = positive class, exact ties), FPR at 95 % TPR
-- as the authors compute it, ROC points, resistance to adversarial samples; and the metrics of
-- the later OOD literature (docs/worst-case.md): conservative AUROC, AUPR-In/Out, FPR@95 with
-- the OOD set positive, detection error, bootstrap intervals, AUC/AAUC/GAUC. Scores may be
-- float32 tensors on any device or plain Lua arrays; labels are int64 classes 1..K.
local umbra = require "umbra"
local core = require "umbra.core"

local eval = {}

-- A float32 tensor on the CPU (the metrics run there), from a tensor or an array of numbers.
local function host(x, what)
  if type(x) == "table" and not core.is_tensor(x) then return umbra.tensor(x) end
  if not core.is_tensor(x) then
    error(string.format("eval: %s must be a tensor or an array of numbers, got %s", what, type(x)), 3)
  end
  if x:device() ~= "cpu" then x = x:to("cpu") end
  return x
end

local function labels_of(y)
  if type(y) == "table" and not core.is_tensor(y) then return umbra.tensor(y, "int64") end
  return host(y, "labels")
end

--- Max-softmax confidence of each row of probs (n, K) -> float32 (n).
function eval.max_conf(probs) return core.metrics_max_conf(host(probs, "probs")) end

-- Scores from a vector of confidences, or from a probability matrix (its max_conf).
local function scores(x, what)
  x = host(x, what)
  if x:dim() == 2 then return core.metrics_max_conf(x) end
  return x
end

--- Mean max confidence of a set: of confidences (n) or of probabilities (n, K).
function eval.mmc(x) return core.metrics_mmc(scores(x, "conf")) end

--- AUROC of separating conf_in (positive) from conf_out by confidence; 0.5 per tied pair.
function eval.auroc(conf_in, conf_out)
  return core.metrics_auroc(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"))
end

--- np.percentile(x, q) (linear interpolation), q in [0, 100].
function eval.percentile(x, q) return core.metrics_percentile(host(x, "x"), q) end

--- FPR at a TPR (default 0.95): tau = the (100 - 100 tpr)th percentile of conf_in; returns
--- the fraction of conf_out at or above tau, and tau.
function eval.fpr_at_tpr(conf_in, conf_out, tpr)
  return core.metrics_fpr_at_tpr(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"), tpr or 0.95)
end

--- ROC points over the distinct scores, highest first, from (0, 0) to (1, 1): float32 tensors
--- fpr, tpr, thresholds (the first threshold is +inf).
function eval.roc(conf_in, conf_out)
  return core.metrics_roc_curve(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"))
end

--- Resistance to adversarial samples: a guard column 1.01/K is appended to probs (n, K); a
--- point is resisted iff the arg-max of its row is its label (1..K). Returns the fraction
--- resisted and a float32 mask (n), 1 where the attack succeeded.
function eval.resistance(probs, labels)
  return core.metrics_resistance(host(probs, "probs"), labels_of(labels))
end

--- The rows of x (n, ...) where mask (n) is nonzero, as a new tensor.
function eval.select_rows(x, mask) return core.metrics_select_rows(host(x, "x"), host(mask, "mask")) end

--- MMC, AUROC and FPR@TPR of one set against the clean in-distribution confidences; an empty
--- set gives NaN for all three (say, Adv. Samples when every attack failed).
function eval.set_metrics(conf_in, conf, tpr)
  conf = scores(conf, "conf")
  local r = {n = conf:size(1)}
  if r.n == 0 then
    r.mmc, r.auroc, r.fpr = 0 / 0, 0 / 0, 0 / 0
    return r
  end
  conf_in = scores(conf_in, "conf_in")
  r.mmc = core.metrics_mmc(conf)
  r.auroc = core.metrics_auroc(conf_in, conf)
  r.fpr, r.tau = core.metrics_fpr_at_tpr(conf_in, conf, tpr or 0.95)
  return r
end

--- AUROC with tied pairs counted as failures (the conservative AUROC of GOOD and ProoD).
function eval.auroc_conservative(conf_in, conf_out)
  return core.detect_auroc_conservative(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"))
end

--- Average precision (sklearn's, not interpolated) with the in-distribution set positive.
function eval.aupr_in(conf_in, conf_out)
  return core.detect_aupr_in(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"))
end

--- Average precision with the OOD set positive and score -conf.
function eval.aupr_out(conf_in, conf_out)
  return core.detect_aupr_out(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"))
end

--- FPR at a TPR (default 0.95) with the OOD set positive (OpenOOD's convention): the share of
--- in-distribution points flagged when tpr of the OOD points are.
function eval.fpr_at_tpr_ood_positive(conf_in, conf_out, tpr)
  return core.detect_fpr_ood_positive(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"), tpr or 0.95)
end

--- Lowest error of a threshold detector with both sets equally likely.
function eval.detection_error(conf_in, conf_out)
  return core.detect_detection_error(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"))
end

--- Every detection metric of one OOD set, each key naming its convention.
function eval.detection_metrics(conf_in, conf_out)
  conf_in, conf_out = scores(conf_in, "conf_in"), scores(conf_out, "conf_out")
  local fpr_in = core.metrics_fpr_at_tpr(conf_in, conf_out, 0.95)
  return {
    auroc = core.metrics_auroc(conf_in, conf_out),
    auroc_conservative = core.detect_auroc_conservative(conf_in, conf_out),
    aupr_in = core.detect_aupr_in(conf_in, conf_out),
    aupr_out = core.detect_aupr_out(conf_in, conf_out),
    fpr95_in_positive = fpr_in,
    fpr95_ood_positive = core.detect_fpr_ood_positive(conf_in, conf_out, 0.95),
    detection_error = core.detect_detection_error(conf_in, conf_out),
  }
end

local function boot_opts(opts, fn)
  opts = opts or {}
  if not opts.generator then error("eval." .. fn .. ": needs opts.generator (umbra.Generator(seed))", 3) end
  return opts.n_boot or 1000, opts.generator
end

--- Percentile bootstrap 95 % interval of the MMC: lo, hi. opts: generator, n_boot (1000).
function eval.bootstrap_mmc(conf, opts)
  local n, g = boot_opts(opts, "bootstrap_mmc")
  return core.detect_bootstrap_mmc(scores(conf, "conf"), n, g)
end

--- Percentile bootstrap 95 % interval of the AUROC (ties half), both sets resampled.
function eval.bootstrap_auroc(conf_in, conf_out, opts)
  local n, g = boot_opts(opts, "bootstrap_auroc")
  return core.detect_bootstrap_auroc(scores(conf_in, "conf_in"), scores(conf_out, "conf_out"), n, g)
end

--- The worst-case sandwich of one OOD set: opts.attack (required), opts.clean and opts.bound
--- (confidences per point), opts.tol (0). Returns {auc, aauc, gauc, n} (conservative AUROCs;
--- NaN where the input is absent) after checking clean <= attack <= bound per point and
--- GAUC <= AAUC <= AUC; a violation is an error.
function eval.sandwich(conf_in, opts)
  if type(opts) ~= "table" or opts.attack == nil then error("eval.sandwich: needs opts.attack", 2) end
  return core.detect_sandwich(scores(conf_in, "conf_in"), opts.clean and scores(opts.clean, "clean"),
    scores(opts.attack, "attack"), opts.bound and scores(opts.bound, "bound"), opts.tol or 0)
end

return eval
