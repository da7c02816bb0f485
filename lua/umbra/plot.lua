-- umbra.plot: pictures through gnuplot (PNG). Data go through temporary files; when
-- gnuplot is missing, plot functions return nil and a message instead of failing, so a
-- recipe still prints its numbers.
local plot = {}

local function have_gnuplot()
  local ok = os.execute("command -v gnuplot >/dev/null 2>&1")
  return ok == true or ok == 0
end

plot.available = have_gnuplot

--- Run a gnuplot script (a string). Returns true or nil, message.
function plot.gnuplot(script)
  if not have_gnuplot() then
    return nil, "gnuplot is not installed (apt-get install gnuplot-nox); no pictures were made"
  end
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local ok = os.execute("gnuplot " .. path .. " 2>" .. path .. ".err")
  local ef = io.open(path .. ".err")
  local err = ef and ef:read("a") or ""
  if ef then ef:close() end
  os.remove(path)
  os.remove(path .. ".err")
  if ok ~= true and ok ~= 0 then return nil, "gnuplot failed: " .. err end
  return true
end

--- Write rows (arrays of numbers) to a whitespace-separated file; blank line where
--- row == false (gnuplot's scan separator).
function plot.write_table(path, rows)
  local f = assert(io.open(path, "w"))
  for _, r in ipairs(rows) do
    if r == false then f:write("\n") else f:write(table.concat(r, " "), "\n") end
  end
  f:close()
end

--- A filled-contour heat map of values on a regular grid, with optional point sets and a
--- box outline. opts: path, grid = {xs=, ys=, values= (row-major #ys x #xs)}, zrange = {lo, hi},
--- levels, title, cblabel, points = {{path=, x=, y=, style=, title=}}, box = {x0,y0,x1,y1}.
function plot.heatmap(opts)
  local dat = opts.path .. ".grid.dat"
  local rows = {}
  local xs, ys, v = opts.grid.xs, opts.grid.ys, opts.grid.values
  for j = 1, #ys do
    for i = 1, #xs do rows[#rows + 1] = {xs[i], ys[j], v[(j - 1) * #xs + i]} end
    rows[#rows + 1] = false
  end
  plot.write_table(dat, rows)
  local lo, hi = opts.zrange[1], opts.zrange[2]
  local lines = {
    "set terminal pngcairo size 720,640 enhanced font 'Sans,11'",
    "set output '" .. opts.path .. "'",
    "set title '" .. (opts.title or "") .. "'",
    "set view map",
    "set size ratio -1",
    string.format("set xrange [%g:%g]", xs[1], xs[#xs]),
    string.format("set yrange [%g:%g]", ys[1], ys[#ys]),
    string.format("set cbrange [%g:%g]", lo, hi),
    string.format("set palette maxcolors %d", opts.levels or 10),
    "set palette defined (0 '#f7fbff', 0.5 '#6baed6', 1 '#08306b')",
    "set cblabel '" .. (opts.cblabel or "") .. "'",
    "set key off",
  }
  if opts.box then
    local b = opts.box
    lines[#lines + 1] = string.format("set object 1 rect from %g,%g to %g,%g front fillstyle empty border lc rgb 'white' lw 2", b[1], b[2], b[3], b[4])
  end
  local plots = {string.format("'%s' using 1:2:3 with image", dat)}
  for k, p in ipairs(opts.points or {}) do
    plot.write_table(p.path, p.rows)
    plots[#plots + 1] = string.format("'%s' using 1:2 with points %s", p.path, p.style or "pt 7 ps 0.3")
  end
  lines[#lines + 1] = "plot " .. table.concat(plots, ", ")
  local ok, err = plot.gnuplot(table.concat(lines, "\n") .. "\n")
  os.remove(dat)
  for _, p in ipairs(opts.points or {}) do os.remove(p.path) end
  return ok, err
end

return plot
