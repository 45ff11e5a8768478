-- One skafos.s3 transfer for the benchmark: `skafos run xfer.lua put|get URL PATH`.
local s3 = require("skafos.s3")
local mode, url, path = ...
local res, err
if mode == "put" then
  res, err = s3.put(url, path)
elseif mode == "get" then
  res, err = s3.get(url, path)
else
  io.stderr:write("usage: xfer.lua put|get URL PATH\n")
  os.exit(2)
end
if not res then
  io.stderr:write("skafos ", mode, " failed: ", tostring(err), "\n")
  os.exit(1)
end
