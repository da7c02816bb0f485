-- recipes/analyze.lua: the paper's numbers from evaluation files (<run>/eval.h5, written by
-- recipes/evaluate.lua): per run a row of the authors' CSV (appended to evals.csv or --csv)
-- and its block of Table 1 in Markdown; several runs print side by side. --plots draws
-- confidence histograms, ROC curves and the most confident OOD images into each run folder.
--   umbra recipes/analyze.lua RUN_DIR [RUN_DIR...] [--csv FILE] [--plots] [--names Plain,CEDA,ACET]
local argparse = require "argparse"
local evalfile = require "umbra.evalfile"
local analysis = require "umbra.analysis"

local parser = argparse("analyze", "MMC, AUROC, FPR@95 and resistance from evaluation files (Table 1, evals.csv)")
parser:argument("runs", "run folders holding eval.h5 (or eval.h5 files)"):args("+")
parser:option("--csv", "CSV file the rows are appended to", "evals.csv")
parser:flag("--no_csv", "write no CSV row")
parser:flag("--plots", "draw histograms, ROC curves and image grids (PNG, gnuplot) into each run folder")
parser:option("--names", "comma-separated names of the runs' column groups (default: their model_name)")
local args = parser:parse(arg)

local function fail(msg) io.stderr:write("analyze: ", msg, "\n"); os.exit(1) end

local names
if args.names then
  names = {}
  for n in args.names:gmatch("[^,]+") do names[#names + 1] = n end
  if #names ~= #args.runs then fail(string.format("--names has %d names for %d runs", #names, #args.runs)) end
end

local results = {}
for i, run in ipairs(args.runs) do
  local ev, err = evalfile.read(run)
  if not ev then fail(err) end
  -- --names also titles the run's pictures
  local ok, res = pcall(analysis.compute, ev, names and names[i])
  if not ok then fail(ev.path .. ": " .. tostring(res)) end
  results[i] = res
  if args.plots then
    local dir = ev.path:match("^(.*)/[^/]*$") or "."
    local files, perr = analysis.plots(res, ev, dir)
    if files then
      io.stderr:write(string.format("%s: %d pictures in %s\n", res.name, #files, dir))
    else
      io.stderr:write("analyze: warning: ", perr, "\n")
    end
  end
end

if not args.no_csv then
  local done, cerr = analysis.append_csv(args.csv, results)
  if not done then fail(cerr) end
end
print(analysis.markdown(results, names))
if not args.no_csv then
  print(string.format("\n%d row%s appended to %s", #results, #results == 1 and "" or "s", args.csv))
end
