-- The authors' released CIFAR-10 Plain model imported from its TensorFlow checkpoint
-- computes what the TF graph computed: its error on the first 1,000 CIFAR-10 test images is
-- in the paper's high single digits (a wrong padding, layout or BN mapping breaks it).
-- Needs UMBRA_PAPER_MODELS and CIFAR-10 test under UMBRA_DATA; pending otherwise.
local models = os.getenv("UMBRA_PAPER_MODELS")
local data_dir = os.getenv("UMBRA_DATA")
local have = models and data_dir and io.open(data_dir .. "/cifar10/test_batch.bin.gz") ~= nil

describe("the released CIFAR-10 Plain model", function()
  local check = have and it or pending
  check("has a test error in the high single digits on the first 1,000 test images", function()
    local p = io.popen("ls '" .. models .. "/cifar10_plain/'*.index")
    local index = p:read("l")
    p:close()
    local model = assert(require("umbra.tf_import").resnet_small((index:gsub("%.index$", ""))))
    model:evaluate()
    local test = assert(require("umbra.data").load("cifar10", {split = "test", limit = 1000}))
    local wrong, n = 0, 0
    for x, y in test:batches{batch_size = 250} do
      wrong = wrong + model:forward(x):argmax(2):float():ne(y:float()):sum()
      n = n + x:size(1)
    end
    assert.are.equal(1000, n)
    local err = wrong / n
    assert.is_true(err > 0.04 and err < 0.12, "test error " .. err)
  end)
end)
