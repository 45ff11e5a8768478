---@meta skafos.s3
-- Editor stub for skafos.s3 (core/ls3.c): streamed, verified transfers to and from
-- presigned storage URLs. Never sends an API token.

---@class skafos.s3
---@field max_put_size integer  5 GiB, the most one presigned PUT takes
local s3 = {}

---@class skafos.s3.Options
---@field timeout? number            whole transfer, seconds (default: none)
---@field connect_timeout? number    seconds (default 30)
---@field low_speed? {bytes: integer, seconds: integer}|false  default {1, 60}
---@field progress? fun(done: integer, total: integer|nil): boolean|nil  at most ~10 calls/s plus a final one
---@field headers? table<string, string>  extra headers (x-amz-meta-*); X-API-TOKEN and Authorization raise
---@field ca_file? string
---@field proxy? string
---@field insecure? boolean
---@field trace? boolean|string    trace to stderr (true) or append to this file, which must not be a link,
---                                FIFO, device or another user's file (else UNSAFE_PATH); URL signatures
---                                and every secret of the state are REDACTED in it

---@class skafos.s3.GetOptions: skafos.s3.Options
---@field resume? boolean   continue dest..".part" with Range + If-Range (the ETag is kept in dest..".part.etag")
---@field sha256? string    expected SHA-256 (hex); a mismatch deletes the part and fails INTEGRITY
---@field hash? boolean      with a sink only: false skips computing the SHA-256 (default true)
---@field sink? userdata     with a file dest: a byte sink (zip.extractor) that also gets every byte
---@field connections? integer  with a file dest: up to this many connections at once (1 to 32, default 1), each
---                             fetching a range of the object (see s3.get)
---@field ramp? boolean         with connections: false opens them all at once (default true: grow to them while
---                             they add throughput)

---@class skafos.s3.PutResult
---@field status integer    always 200
---@field etag string       without quotes
---@field bytes integer
---@field md5 string        hex, of the bytes sent
---@field sha256 string     hex, of the bytes sent
---@field etag_verified boolean  the ETag was a plain MD5 and matched
---@field etag_note? string      why it was not compared

---@class skafos.s3.GetResult
---@field status integer    200, 206 (resumed) or 416 (the part already held everything)
---@field bytes integer     size of dest (with a sink: bytes handed to it)
---@field etag string
---@field sha256? string    hex, of the whole file (absent for a sink with hash = false or resumed)
---@field resumed boolean
---@field restarted boolean the object changed since the part was written: fetched from byte 0
---@field sink_skipped? string  with opts.sink: "CODE: message" when the sink refused the bytes
---@field connections? integer   with opts.connections > 1: the most connections that were busy at once
---                              (absent when the get went on as a single-connection one)

---Uploads a file path or a byte source (userdata with __skafos_source, e.g. zip.stream's
---reader; reset to byte 0 first) with Content-Length, Content-Type application/octet-stream
---and Expect: 100-continue. Errors: EXPIRED, SIGNATURE, ACCESS_DENIED, TOO_LARGE, SLOW_DOWN,
---INTERNAL, UNAVAILABLE, NOT_FOUND, INTEGRITY (ETag is not the MD5 sent), READ, SOURCE,
---and the network codes of skafos.http.
---@param url string
---@param source string|userdata
---@param opts? skafos.s3.Options
---@return skafos.s3.PutResult|nil res
---@return skafos.Error|nil err  with s3_code and request_id when storage sent an XML error
function s3.put(url, source, opts) end

---Downloads into dest..".part", then fsyncs and renames it to dest. A failed get keeps the
---part for a later resume = true. Errors as put, plus TRUNCATED (length short; retryable),
---RANGE, WRITE and INTEGRITY (sha256 option).
---dest..".part" and dest..".part.etag" are reused (resumed or emptied) only when each is a
---regular file of the effective user with one link: a symbolic or hard link, FIFO, device,
---directory or another user's file at either fails UNSAFE_PATH before any request, and is
---neither written through nor read as a point to resume from. The final rename replaces
---whatever is at dest itself (a link there is replaced, not followed).
---`dest` may instead be a byte sink (userdata with __skafos_sink, e.g. zip.extractor): the
---sink is reset, then gets the body of a 200 answer as it arrives (no part file), and is
---reset again when the get fails, so a retry starts clean. A resumable sink (a
---zip.extractor made with resumable = true) with `resume = true` and no `sha256` instead
---says where it can go on: the request carries Range + If-Range, a 206 continues there, a
---200 (the object changed) starts it afresh (restarted = true), and a failed get leaves it
---as it was for the next call. A failure of the sink carries the sink's code
---(NOT_STREAMABLE, UNSAFE_ARCHIVE, INTEGRITY, ...).
---With a sink, `opts.hash = false` skips the SHA-256 (the result then has no sha256): on a
---machine with few cores it costs as much time as the transfer, and the extractor checks
---every entry's CRC-32 anyway.
---With a file `dest` and `opts.sink`, the file is written as usual and the sink (reset
---first) also gets every byte of the object in order from the first: a resumed part is
---handed to it before the rest arrives, and a restart resets it. The file is what counts:
---a sink that refuses the bytes is let go (reset, and sink_skipped says why) and the
---download goes on; only an interruption ends it. When the get fails the sink is reset.
---With a file `dest` and `opts.connections` N > 1, a first request for the object's first
---8 MiB learns its size and whether storage answers ranges; the rest is cut into pieces
---(about two per connection, 8 to 32 MiB) taken in file order over up to N connections at
---once: one TCP connection each, never multiplexed, opened one, then four, sixteen, ... for
---as long as each step adds a fifth to the throughput (`ramp = false` opens all N at once);
---when the first range arrives at 160 MiB/s or more (48 MiB/s from a server that answered
---within 15 ms), the rest is fetched as with
---connections = 1 (Range from there + If-Range; the result then has no `connections`);
---an idle connection takes half of the largest range left. Each range is written at its
---offset and retried alone (up to 5 times, with a short backoff) when it fails, stalls past
---the low-speed limit or comes back short, except the last one left, which fails the get
---for the caller's retry policy. The SHA-256 is computed in order as the front of the file
---fills. The ranges done are recorded in dest..".part.etag" (its ETag, size and
---`done FIRST LAST` lines, every 16 MiB of a range), so a get that fails or is killed keeps
---them, and the next one with `resume = true` asks only for the missing ranges (with
---If-Range). A 200 to the first request (storage ignores Range) is taken as the whole
---download on that one connection; a 200, 416, or another size or ETag for a later range
---means the object changed: the part is emptied and the get starts over (restarted = true;
---after two such restarts it fails CHANGED). `opts.sink` is let go at once (sink_skipped
---starts with "PARALLEL"): its bytes would not arrive in order.
---@param url string
---@param dest string|userdata
---@param opts? skafos.s3.GetOptions
---@return skafos.s3.GetResult|nil res
---@return skafos.Error|nil err
function s3.get(url, dest, opts) end

return s3
