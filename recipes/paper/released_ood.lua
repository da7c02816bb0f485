-- recipes/paper/released_ood.lua: what can be measured of the authors' released SVHN and
-- CIFAR-100 models without their own test sets: mean max confidence on the CIFAR-10 test
-- images (an out-of-distribution set for both), on the authors' noise recipe made of
-- uniform noise only (no in-distribution images to permute), and on adversarial noise
-- (PGD from that noise, eps 0.3, 80 steps of 0.02, as recipes/evaluate.lua).
-- Usage: umbra recipes/paper/released_ood.lua [--n 1000] [--n_adv 256]
local umbra = require "umbra"
local argparse = require "argparse"
local data = require "umbra.data"
local noise = require "umbra.noise"
local attack = require "umbra.attack"
local tf_import = require "umbra.tf_import"

local parser = argparse("released_ood",
                        "OOD confidence of the released SVHN and CIFAR-100 models on CIFAR-10 and noise")
parser:option("--models", "folder of the released models", os.getenv("UMBRA_PAPER_MODELS") or "../shared/paper-models")
parser:option("--n", "CIFAR-10 test images", "1000"):convert(math.tointeger)
parser:option("--n_adv", "noise points attacked", "256"):convert(math.tointeger)
parser:option("--threads", "threads", "2"):convert(math.tointeger)
local args = parser:parse(arg)
umbra.set_num_threads(args.threads)

local cifar = assert(data.load("cifar10", {split = "test", limit = args.n}))
local function mmc(model, x) return model:forward(x):softmax(2):max(2):mean() end

print("| model | MMC CIFAR-10 (OOD) | MMC uniform noise (blurred, rescaled) | MMC adv. noise (eps 0.3, 80 x 0.02) |")
print("|---|---:|---:|---:|")
for _, name in ipairs{"svhn_plain", "svhn_ceda", "svhn_acet", "cifar100_plain", "cifar100_ceda", "cifar100_acet"} do
  local p = io.popen("ls '" .. args.models .. "/" .. name .. "/'*.index")
  local index = p:read("l"); p:close()
  local model = assert(tf_import.resnet_small((index:gsub("%.index$", ""))))
  model:evaluate()
  local sum, count = 0, 0
  for x in cifar:batches{batch_size = 250} do sum = sum + mmc(model, x) * x:size(1); count = count + x:size(1) end
  local g = umbra.Generator(0)
  local z = noise.authors(umbra.zeros({args.n_adv, 3, 32, 32}), g, {frac_perm = 0})
  local adv = attack.pgd(model, z, {eps = 0.3, steps = 80, step = 0.02, objective = "max_conf", generator = g})
  print(string.format("| %s | %.3f | %.3f | %.3f |", name, sum / count, mmc(model, z), mmc(model, adv)))
end
