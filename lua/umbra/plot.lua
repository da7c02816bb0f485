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

-- a gnuplot single-quoted string ('' stands for ')
local function q(s) return "'" .. tostring(s or ""):gsub("'", "''") .. "'" end

--- A filled-contour heat map of values on a regular grid, with optional point sets and a
--- box outline. opts: path, grid = {xs=, ys=, values= (row-major #ys x #xs)}, zrange = {lo, hi},
--- levels, title, cblabel, xlabel, ylabel, points = {{path=, rows=, style=, title=}},
--- box = {x0,y0,x1,y1}, box_title. Point sets and the box with a title get a key entry.
--- plot.heatmap_script(opts, dat) -> the gnuplot script alone (dat: the grid's data file).
function plot.heatmap_script(opts, dat)
  local xs, ys = opts.grid.xs, opts.grid.ys
  local lo, hi = opts.zrange[1], opts.zrange[2]
  local lines = {
    "set terminal pngcairo size 720,700 enhanced font 'Sans,11'",
    "set output " .. q(opts.path),
    "set title " .. q(opts.title),
    "set xlabel " .. q(opts.xlabel),
    "set ylabel " .. q(opts.ylabel),
    "set view map",
    "set size ratio -1",
    string.format("set xrange [%g:%g]", xs[1], xs[#xs]),
    string.format("set yrange [%g:%g]", ys[1], ys[#ys]),
    string.format("set cbrange [%g:%g]", lo, hi),
    string.format("set palette maxcolors %d", opts.levels or 10),
    "set palette defined (0 '#f7fbff', 0.5 '#6baed6', 1 '#08306b')",
    "set cblabel " .. q(opts.cblabel),
    "set key below horizontal",
  }
  local plots = {string.format("%s using 1:2:3 with image notitle", q(dat))}
  if opts.box then
    local b = opts.box
    lines[#lines + 1] = string.format("set object 1 rect from %g,%g to %g,%g front fillstyle empty "
                                      .. "border lc rgb '#ff7f0e' lw 2", b[1], b[2], b[3], b[4])
    if opts.box_title then   -- a key entry drawn like the box
      plots[#plots + 1] = "NaN with lines lc rgb '#ff7f0e' lw 2 title " .. q(opts.box_title)
      lines[#lines + 1] = "set key box opaque"
    end
  end
  for _, p in ipairs(opts.points or {}) do
    plots[#plots + 1] = string.format("%s using 1:2 with points %s %s", q(p.path), p.style or "pt 7 ps 0.3",
                                      p.title and "title " .. q(p.title) or "notitle")
  end
  lines[#lines + 1] = "plot " .. table.concat(plots, ", ")
  return table.concat(lines, "\n") .. "\n"
end

function plot.heatmap(opts)
  local dat = opts.path .. ".grid.dat"
  local rows = {}
  local xs, ys, v = opts.grid.xs, opts.grid.ys, opts.grid.values
  for j = 1, #ys do
    for i = 1, #xs do rows[#rows + 1] = {xs[i], ys[j], v[(j - 1) * #xs + i]} end
    rows[#rows + 1] = false
  end
  plot.write_table(dat, rows)
  for _, p in ipairs(opts.points or {}) do plot.write_table(p.path, p.rows) end
  local ok, err = plot.gnuplot(plot.heatmap_script(opts, dat))
  os.remove(dat)
  for _, p in ipairs(opts.points or {}) do os.remove(p.path) end
  return ok, err
end


-- the terminal line of the analysis pictures: noenhanced, so that names like noise_adv are
-- printed as they are rather than with subscripts
local function png(path, w, h, font)
  return string.format("set terminal pngcairo size %d,%d noenhanced font 'Sans,%d'\nset output %s", w, h,
                       font or 10, q(path))
end

--- A histogram of values with bins equal bins on range = {lo, hi} (the last bin includes hi,
--- values outside are left out, as numpy.histogram). opts: path, values (a Lua array), bins
--- (100), range ({0, 1}), logy (counts on a log scale, from 0.9), title, xlabel, ylabel.
function plot.histogram(opts)
  local lo, hi = (opts.range or {0, 1})[1], (opts.range or {0, 1})[2]
  local bins = opts.bins or 100
  local counts, width = {}, (hi - lo) / bins
  for b = 1, bins do counts[b] = 0 end
  for _, v in ipairs(opts.values) do
    if v >= lo and v <= hi then
      local b = math.min(bins, math.floor((v - lo) / width) + 1)
      counts[b] = counts[b] + 1
    end
  end
  local rows = {}
  for b = 1, bins do
    if counts[b] > 0 or not opts.logy then rows[#rows + 1] = {lo + (b - 0.5) * width, counts[b]} end
  end
  if #rows == 0 then rows[1] = {lo, 0} end
  local dat = opts.path .. ".dat"
  plot.write_table(dat, rows)
  local lines = {
    png(opts.path, 800, 500),
    "set title " .. q(opts.title),
    "set xlabel " .. q(opts.xlabel),
    "set ylabel " .. q(opts.ylabel),
    string.format("set xrange [%g:%g]", lo, hi),
    string.format("set boxwidth %g", width),
    "set style fill solid 0.7 border lc rgb '#08306b'",
    "set key off",
    "set grid ytics",
  }
  if opts.logy then
    lines[#lines + 1] = "set logscale y"
    lines[#lines + 1] = "set yrange [0.9:*]"
  else
    lines[#lines + 1] = "set yrange [0:*]"
  end
  lines[#lines + 1] = string.format("plot %s using 1:2 with boxes lc rgb '#6baed6'", q(dat))
  local ok, err = plot.gnuplot(table.concat(lines, "\n") .. "\n")
  os.remove(dat)
  return ok, err
end

--- Curves in one figure. opts: path, series = {{x = {...}, y = {...}, title =, dashed =}},
--- title, xlabel, ylabel, xrange = {lo, hi}, yrange = {lo, hi}, key ("bottom right").
function plot.lines(opts)
  local dat = opts.path .. ".dat"
  local rows = {}
  for i, s in ipairs(opts.series) do
    if i > 1 then rows[#rows + 1] = false; rows[#rows + 1] = false end  -- two blank lines: next index
    for k = 1, #s.x do rows[#rows + 1] = {s.x[k], s.y[k]} end
  end
  plot.write_table(dat, rows)
  local lines = {
    png(opts.path, 800, 640),
    "set title " .. q(opts.title),
    "set xlabel " .. q(opts.xlabel),
    "set ylabel " .. q(opts.ylabel),
    "set key " .. (opts.key or "bottom right"),
    "set grid",
  }
  if opts.xrange then lines[#lines + 1] = string.format("set xrange [%g:%g]", opts.xrange[1], opts.xrange[2]) end
  if opts.yrange then lines[#lines + 1] = string.format("set yrange [%g:%g]", opts.yrange[1], opts.yrange[2]) end
  local plots = {}
  for i, s in ipairs(opts.series) do
    plots[i] = string.format("%s index %d using 1:2 with lines lw 2 dt %d title %s", q(dat), i - 1,
                             s.dashed and 2 or 1, q(s.title))
  end
  lines[#lines + 1] = "plot " .. table.concat(plots, ", \\\n  ")
  local ok, err = plot.gnuplot(table.concat(lines, "\n") .. "\n")
  os.remove(dat)
  return ok, err
end

--- A grid of images (a float32 tensor (m, C, H, W) with values in [0,1], C = 1 or 3), one
--- title each. opts: path, images, titles, columns (8), title.
function plot.image_grid(opts)
  local size = opts.images:size()
  local m, c, h, w = size[1], size[2], size[3], size[4]
  if #size ~= 4 or (c ~= 1 and c ~= 3) then
    return nil, "plot.image_grid: images must be (m, 1 or 3, H, W), got " .. table.concat(size, "x")
  end
  local px = opts.images:to_table()
  local dat = opts.path .. ".dat"
  local rows = {}
  local function clip(v) return math.max(0, math.min(1, v)) end
  for i = 1, m do
    if i > 1 then rows[#rows + 1] = false; rows[#rows + 1] = false end
    for y = 1, h do
      for x = 1, w do
        if c == 1 then
          rows[#rows + 1] = {x - 1, h - y, clip(px[i][1][y][x])}
        else
          rows[#rows + 1] = {x - 1, h - y, math.floor(255 * clip(px[i][1][y][x]) + 0.5),
                             math.floor(255 * clip(px[i][2][y][x]) + 0.5), math.floor(255 * clip(px[i][3][y][x]) + 0.5)}
        end
      end
    end
  end
  plot.write_table(dat, rows)
  local cols = math.min(opts.columns or 8, m)
  local nrows = math.ceil(m / cols)
  local lines = {
    png(opts.path, cols * 120, nrows * 130 + 40, 8),
    -- the grid below a 40-pixel band for the figure's title; room above each image for its own
    string.format("set multiplot layout %d,%d title %s font 'Sans,11' margins 0.01,0.99,0.01,%g spacing 0.01,%g",
                  nrows, cols, q(opts.title), 1 - 40 / (nrows * 130 + 40), 20 / (nrows * 130 + 40)),
    "unset key", "unset tics", "unset border", "unset colorbox",
    "set size ratio -1",
    string.format("set xrange [-0.5:%g]", w - 0.5),
    string.format("set yrange [-0.5:%g]", h - 0.5),
    "set palette gray",
    "set cbrange [0:1]",
  }
  for i = 1, m do
    lines[#lines + 1] = "set title " .. q((opts.titles or {})[i])
    lines[#lines + 1] = string.format(c == 1 and "plot %s index %d using 1:2:3 with image"
                                      or "plot %s index %d using 1:2:3:4:5 with rgbimage", q(dat), i - 1)
  end
  lines[#lines + 1] = "unset multiplot"
  local ok, err = plot.gnuplot(table.concat(lines, "\n") .. "\n")
  os.remove(dat)
  return ok, err
end

return plot
