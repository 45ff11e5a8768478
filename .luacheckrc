std = "lua54"
max_line_length = 120
exclude_files = { "build", "build-*", "tests/emulator/node_modules" }
files["tests"] = { std = "+busted" }
files["tests/bench"] = { std = "lua54" }
-- workflow and hook files may take unused arguments from the contract (ctx, args)
unused_args = false
