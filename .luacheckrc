-- luacheck settings for umbra's Lua: `make lint` (and `make test`) run `luacheck .` here.
std = "lua54"
max_line_length = 120
include_files = {"lua/umbra/*.lua", "recipes/**/*.lua", "models/*.lua", "scripts/*.lua",
                 "scripts/bench/*.lua", "tests/lua/*.lua"}
-- the busted specs use busted's globals (describe, it, assert.*, ...)
files["tests/lua"] = {std = "+busted"}
