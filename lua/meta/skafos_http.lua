---@meta skafos.http
-- Editor stub for skafos.http (core/lhttp.c): HTTP over libcurl with a per-state
-- connection cache, stable error codes and redacted traces.

---@class skafos.http
---@field user_agent string  "skafos/<version> libcurl/<version>", sent with every request
local http = {}

---@class skafos.Error
---@field code string        stable upper-case code: TIMEOUT, COULDNT_CONNECT, COULDNT_RESOLVE, PROXY, TLS,
---                          SEND, RECV, EMPTY_REPLY, TRUNCATED, HTTP2, PROTOCOL, TOO_MANY_REDIRECTS, BAD_URL,
---                          REDIRECT, UNSAFE_PATH, WRITE, READ, NO_MEMORY, TOO_LARGE, CALLBACK, ABORTED,
---                          INTERRUPTED, CURL, ...
---@field message string     libcurl's error-buffer text or ours; tostring(err) gives it
---@field status? integer    HTTP status when the error is an HTTP answer
---@field retryable boolean  whether the same request may succeed later
---@field url? string        the request URL with signatures and credentials redacted
---@field curl_code? integer the raw CURLcode
---@field retry_after? number seconds from a Retry-After header (skafos.s3)

---@class skafos.http.Request
---@field url string
---@field method? string             default GET (POST when a body is given)
---@field headers? table<string, string|false>|string[]  {name = value} or {"Name: value"};
---                                  a false value removes a header libcurl would add. The values of
---                                  X-API-TOKEN, Authorization and Proxy-Authorization are registered as
---                                  secrets of the state (as core.add_secret does)
---@field body? string
---@field body_file? string          upload this file (Content-Length set, never chunked)
---@field output? string             stream a 2xx body into this file; other bodies stay in res.body.
---                                  A file already there is replaced only when it is a regular file of the
---                                  effective user with one link; a symbolic or hard link, FIFO, device,
---                                  directory or another user's file fails UNSAFE_PATH before the request
---@field timeout? number            whole request, seconds (default: none)
---@field connect_timeout? number    seconds (default 30)
---@field low_speed? {bytes: integer, seconds: integer}|false  abort below bytes/s for seconds (default {1, 60})
---@field follow? boolean            follow redirects (default false); caller headers are dropped when the
---                                  scheme, host or port changes. Only http and https URLs are followed, and
---                                  never from https down to http except to loopback: else err REDIRECT
---@field max_redirects? integer     default 10
---@field max_body? integer          largest body kept in memory (default 64 MiB) else err TOO_LARGE
---@field progress? fun(done: integer, total: integer|nil): boolean|nil  at most ~10 calls/s plus a final one;
---                                  return false to abort (err ABORTED); an error gives err CALLBACK
---@field ca_file? string            CA bundle
---@field proxy? string              proxy URL (default: libcurl's http_proxy/https_proxy/no_proxy handling)
---@field insecure? boolean          skip TLS verification (prints a warning)
---@field trace? boolean|string      trace to stderr (true) or append to this file (checked as `output`);
---                                  default from SKAFOS_TRACE / -vv. Credential headers, URL signatures and
---                                  every secret of the state are REDACTED wherever they appear

---@class skafos.http.Response
---@field status integer
---@field headers table<string, string>  lower-case names; repeated headers joined with ", "
---@field body? string                   absent when a 2xx body went to `output`
---@field bytes? integer                 bytes written to `output`
---@field url string                     the final URL
---@field redirects integer              redirects followed
---@field redirect_url? string           absolute target of a 3xx answer
---@field version string                 HTTP version of the final response: "1.0", "1.1", "2" (negotiated
---                                      by ALPN over https when the server offers it) or "3"

---Performs one request (and its redirects when follow = true). HTTP error statuses are
---responses, not errors; network and local failures return nil, err. Misuse raises.
---@param req skafos.http.Request
---@return skafos.http.Response|nil res
---@return skafos.Error|nil err
function http.request(req) end

---Sleeps; returns early with nil, err (INTERRUPTED) on SIGINT.
---@param seconds number
---@return true|nil ok
---@return skafos.Error|nil err
function http.sleep(seconds) end

---Monotonic clock in seconds.
---@return number
function http.now() end

---The text with X-Amz-Signature/Credential/Security-Token values, X-API-TOKEN,
---Authorization and Cookie header values, and every secret of the state replaced by REDACTED.
---@param text string
---@return string
function http.redact(text) end

---Whether a redirect from `from` to `to` may be followed, by the rule `follow = true` applies:
---only to http or https, and from https down to http only for a loopback host (127.0.0.0/8,
---::1, localhost). For callers that follow a Location themselves.
---@param from string  the URL that answered with the redirect
---@param to string    where it points, as an absolute URL (res.redirect_url)
---@return true|nil ok
---@return skafos.Error|nil err  code REDIRECT, the message says why (URLs redacted)
function http.redirect_allowed(from, to) end

return http
