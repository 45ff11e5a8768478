---@meta skafos.zip
-- Editor stub for skafos.zip (core/lzip.c): deterministic archives written with parallel
-- deflate, a one-pass stream of all-stored archives, and checked listing and extraction,
-- also while the archive arrives. Operational failures return nil, err (err.code:
-- INVALID_INPUT, IO, NOT_FOUND, EXISTS, NOT_STORED, NOT_STREAMABLE, UNSAFE_ARCHIVE,
-- INTEGRITY, INTERRUPTED, NOMEM); misuse raises.

---@class skafos.zip
local zip = {}

---Compression: "auto" samples each file and stores it unless deflate saves at least 3 %;
---"store"; "deflate" (level 6); or a deflate level 0..9 (0 stores).
---@alias skafos.zip.Level "auto"|"store"|"deflate"|integer

---@class skafos.zip.WriteOptions
---@field level? skafos.zip.Level  default "auto" (deflating at level 6)
---@field threads? integer         compression threads, 1..64 (default: online cores)
---@field mtime? integer           Unix time of every entry (default: $SOURCE_DATE_EPOCH, else 1980-01-01)
---@field progress? fun(done: integer, total: integer)  input bytes; every MiB and at the end
---@field methods? boolean        zip.create: false leaves the per-entry `methods` out of the summary
---                               (a table of every name: worth leaving out for a large archive)
---@field litter? "skip"|"keep"  operating-system files found walking a directory (.DS_Store, AppleDouble
---                               ._* files, Thumbs.db, desktop.ini, __MACOSX directories): left out
---                               (default) or archived; an entry given by its own path is always archived

---A file (archived under its base name) or directory (under its own name, walked
---recursively) path, or a table: src (file or directory; nil with a name ending in "/" for
---an empty directory entry), name (archive name; "" puts a directory's contents at the
---root), method ("store"|"deflate"|"auto"), level (0..9) and litter ("skip"|"keep") for this entry.
---@alias skafos.zip.Entry string|{src?: string, name?: string, method?: "store"|"deflate"|"auto", level?: integer,
---  litter?: "skip"|"keep"}

---@class skafos.zip.Summary
---@field entries integer
---@field bytes_in integer   uncompressed bytes
---@field bytes_out integer  size of the archive
---@field stored integer    entries stored
---@field deflated integer  entries deflated
---@field methods? table<string, "store"|"deflate">  per entry name, the method chosen (unless opts.methods
---                         is false)

---Writes a whole archive atomically (a temporary file renamed into place). Entries are
---sorted by name, timestamps fixed, modes normalised to 0644/0755, zip64 used when needed:
---the same inputs always give the same bytes. A symlink inside a directory is archived as
---its target; one leading outside it fails with INVALID_INPUT naming it.
---@param path string
---@param entries skafos.zip.Entry[]
---@param opts? skafos.zip.WriteOptions
---@return skafos.zip.Summary|nil summary
---@return skafos.Error|nil err
function zip.create(path, entries, opts) end

---@class skafos.zip.Planned
---@field files integer
---@field dirs integer
---@field bytes integer             in all the files
---@field left_out integer          litter left out (see WriteOptions.litter)
---@field left_out_names string[]   the first ten of those, by archive name ("d/.DS_Store", "__MACOSX/")
---@field inputs {files: integer, dirs: integer, bytes: integer, left_out: integer}[]  per entry given

---What zip.create and zip.stream would archive, walked and checked the same way (links,
---loops, unreadable files, names, duplicates, litter) without reading any file.
---@param entries skafos.zip.Entry[]
---@param opts? skafos.zip.WriteOptions
---@return skafos.zip.Planned|nil plan
---@return skafos.Error|nil err
function zip.plan(entries, opts) end

---@class skafos.zip.Writer
local Writer = {} -- luacheck: ignore 241

---Opens an archive for entries added one call at a time, in call order. Usable with
---`local w <close> = zip.writer(...)`: finished on a normal scope exit, discarded when the
---scope is left by an error (a failure to finish is raised). Never closed: discarded by __gc.
---@param path string
---@param opts? skafos.zip.WriteOptions  `level` is the default for add
---@return skafos.zip.Writer|nil writer
---@return skafos.Error|nil err
function zip.writer(path, opts) end

---Adds a file, or a directory walked recursively, under `name` (default: its base name);
---`w:add(nil, "dir/")` adds an empty directory entry. A failed add leaves the archive as it
---was before the call.
---@param src string|nil
---@param name? string
---@param opts? {method?: "store"|"deflate"|"auto", level?: integer, litter?: "skip"|"keep"}
---@return true|nil ok
---@return skafos.Error|nil err
function Writer:add(src, name, opts) end

---Writes the central directory and renames the archive into place. A second call returns true.
---@return true|nil ok
---@return skafos.Error|nil err
function Writer:close() end

---Discards the archive.
---@return true
function Writer:abort() end

---After close: the same summary zip.create returns; nil before.
---@return skafos.zip.Summary|nil
function Writer:summary() end

---@class skafos.zip.Stream
---@field size integer  exact archive size, also `#stream`
local Stream = {} -- luacheck: ignore 241

---Plans an archive of stored entries and returns its exact size and a reader producing
---its bytes in one pass over the inputs, without a temporary file; the bytes equal
---zip.create(path, entries, {level = "store"}). Fails with NOT_STORED when some entry
---would be compressed (then use zip.create). The reader is a byte source for
---skafos.s3.put (its metatable has __skafos_source = true).
---@param entries skafos.zip.Entry[]
---@param opts? {level?: "auto"|"store"|integer, mtime?: integer, litter?: "skip"|"keep"}
---@return integer|nil size
---@return skafos.zip.Stream|skafos.Error reader_or_err
function zip.stream(entries, opts) end

---Up to n bytes (default 65536); nil at the end; nil, err when an input changed or
---cannot be read.
---@param n? integer
---@return string|nil bytes
---@return skafos.Error|nil err
function Stream:read(n) end

---Back to byte 0 (for a retried upload).
---@return true|nil ok
---@return skafos.Error|nil err
function Stream:reset() end

---@return true
function Stream:close() end

---@class skafos.zip.ListEntry
---@field name string              the name as extraction reads it (see zip.extract): UTF-8, "/" between
---                                components, no "." component; "" for the archive's root ("./")
---@field stored_name? string      the bytes the archive stores, when they differ from name
---@field unsafe_name? string      why extraction refuses the name (then name is the stored one as text)
---@field size integer             uncompressed
---@field compressed_size integer
---@field method "store"|"deflate"|integer
---@field crc integer
---@field dir boolean
---@field symlink boolean
---@field mode integer             permission bits recorded by a Unix writer, else 0
---@field offset integer           of the local header

---The entries of an archive: `#listing`, `listing[i]` and `ipairs(listing)` work as on a list;
---each entry's table is made when it is read (a million entries stay in about 75 MB, not a
---million tables).
---@class skafos.zip.Listing

---Reads the central directory (INTEGRITY when the archive is damaged or not a zip;
---UNSAFE_ARCHIVE with more than opts.max_entries entries, default 1000000, 0 = no limit,
---refused before the directory is read). Names are read by the rule zip.extract gives; an
---unsafe name is listed, with unsafe_name set.
---@param path string
---@param opts? {max_entries?: integer}
---@return skafos.zip.Listing|nil entries  (of skafos.zip.ListEntry)
---@return skafos.Error|nil err
function zip.list(path, opts) end

---@class skafos.zip.VerifyOptions
---@field max_size? integer   bytes in total (default: unlimited)
---@field max_ratio? number   bytes produced / archive bytes read so far, counted as zip.extractor
---                           counts it (default: unlimited; zip.extractor's default is 1000)
---@field max_entries? integer  entries at most (default 1000000; 0 = unlimited), refused before the
---                           directory is read
---@field symlinks? "refuse"|"inside"  default "refuse"; "inside" allows links whose target stays
---                           inside, checked as extraction checks them
---@field names? "refuse"|"report"  default "refuse"; "report": what only extraction refuses (unsafe
---                           or duplicate names, entries under a file, symlinks and their targets,
---                           directory entries with data) goes into result.unsafe instead of failing
---@field stream? boolean     also refuse what zip.extractor refuses reading the archive front to
---                           back: bytes before, between or after the records, local headers or data
---                           descriptors that disagree with the central directory (not checked for
---                           an archive with a stored entry whose size follows its data, which is
---                           downloaded and read from the file)
---@field progress? fun(done: integer, total: integer)

---@class skafos.zip.Verified
---@field entries integer
---@field bytes integer       uncompressed
---@field unsafe? string      names = "report" only: the first thing extraction would refuse, as the
---                           message zip.extract would give (e.g. "entry '../x': '..' component in name")

---Makes the checks zip.extract makes with the same options and reads all data (sizes, CRCs)
---without writing. Fails with INTEGRITY for damage (CRC, sizes, truncation, structure) and
---UNSAFE_ARCHIVE for what extraction refuses (names, duplicates, symlinks, overlaps,
---encryption, methods, limits); with names = "report" the archive passes despite the
---names, symlinks and directory forms extraction refuses, reported in result.unsafe.
---@param path string
---@param opts? skafos.zip.VerifyOptions
---@return skafos.zip.Verified|nil result
---@return skafos.Error|nil err
function zip.verify(path, opts) end

---@class skafos.zip.ExtractOptions
---@field max_size? integer   bytes written in total (default: free space of the target filesystem)
---@field max_ratio? number   bytes written / archive size (default 1000; 0 = unlimited)
---@field max_entries? integer  entries at most (default 1000000; 0 = unlimited); zip.extractor refuses
---                           the entry past the limit when it arrives and removes what it extracted
---@field symlinks? "refuse"|"inside"  default "refuse"; "inside" allows links whose target stays inside
---@field force? boolean      replace a non-empty `dir` (else EXISTS)
---@field progress? fun(done: integer, total: integer)

---Extracts into a fresh staging directory beside `dir`, renamed to `dir` only once every
---entry passed; on failure nothing is left behind (missing parents it created are removed).
---Names are read by one rule (also for zip.list, zip.verify and zip.extractor): a name without
---the UTF-8 flag is UTF-8 when it is valid UTF-8, else CP437; a backslash separates components
---when the archive's "version made by" names a DOS or Windows file system (MS-DOS/FAT, OS/2
---HPFS, NTFS, VFAT); a "." component followed by "/" is dropped ("./a" is "a"; "./" is the
---target itself). Files are written under the UTF-8 name.
---Refuses with UNSAFE_ARCHIVE: absolute names, drive letters, other backslashes, ".." and
---empty components, a final ".", NUL bytes, a name flagged UTF-8 that is not, duplicate and
---case-only duplicate names (compared as read), entries under a file or symlink, symlinks
---(unless allowed), overlapping entries, encrypted or non-deflate entries, limits. With
---INTEGRITY: more or fewer bytes than declared, CRC mismatch, truncated data or directory.
---@param path string
---@param dir string
---@param opts? skafos.zip.ExtractOptions
---@return {entries: integer, bytes: integer}|nil result
---@return skafos.Error|nil err
function zip.extract(path, dir, opts) end

---@class skafos.ZipExtractor
---A byte sink (`__skafos_sink`): skafos.s3.get writes a download straight into it.
local ZipExtractor = {} -- luacheck: ignore 241

---Feeds the next bytes of the archive. A failure is final until reset.
---@param bytes string
---@return true|nil ok
---@return skafos.Error|nil err  INTEGRITY, UNSAFE_ARCHIVE, NOT_STREAMABLE, IO, INTERRUPTED
function ZipExtractor:write(bytes) end

---Checks the central directory against the streamed entries and renames the staging
---directory to `dir`. The extractor is done afterwards, whatever the result.
---@return {entries: integer, bytes: integer}|nil result
---@return skafos.Error|nil err
function ZipExtractor:finish() end

---Forgets everything written so far (the staging directory is emptied).
---@return true|nil ok
---@return skafos.Error|nil err
function ZipExtractor:reset() end

---Removes whatever was extracted, also a resumable extractor's partial work.
---@return true
function ZipExtractor:abort() end

---Frees the extractor; also what __gc and __close do. As abort, except that a resumable
---extractor keeps its partial work (when it has any) for a later one to go on from.
---@return true
function ZipExtractor:close() end

---Resumable extractors: rebuilds what an earlier extractor of the same target left (in
---this process after a failed download, or in another after a kill) and says where the
---archive bytes must go on from. Every finished entry's file is checked against its CRC
---again (a changed one moves the point back to it), a stored entry goes on from its last
---byte, a deflated one from its local header. 0 and "" when there is nothing to go on from.
---@return integer|nil offset
---@return string|skafos.Error etag  of the object the kept bytes came from, or the error
function ZipExtractor:resume_point() end

---Announces the bytes about to be written: offset 0 starts afresh for the object with
---this ETag (anything kept is removed); otherwise offset must be the resume point.
---@param offset integer
---@param etag? string
---@return true|nil ok
---@return skafos.Error|nil err  RANGE when offset is not the resume point
function ZipExtractor:start(offset, etag) end

---Where a resumable extractor keeps its partial work (`<parent>/.<name>.skafos-partial`,
---holding the stage `tree/` and a `journal`), or nil.
---@return string|nil
function ZipExtractor:partial_dir() end

---Extracts an archive while its bytes arrive, front to back: entries go into a fresh
---staging directory beside `dir` under the rules of zip.extract, checked as they arrive;
---`finish` then checks the central directory against what was streamed (names, offsets,
---sizes, CRCs, methods, count; nothing after the end record) and renames the stage into
---place. A stored entry whose sizes follow its data cannot be streamed: NOT_STREAMABLE,
---so the caller downloads the archive and uses zip.extract instead. The target is checked
---here (EXISTS unless opts.force), before any byte arrives. `max_ratio` counts the
---bytes written against the archive bytes received so far.
---With `opts.resumable = true` the stage is `<parent>/.<name>.skafos-partial/tree`, beside
---a journal of every entry begun and ended, kept after an interruption (and by close and
---__gc) so that a later extractor goes on from it (resume_point, start; skafos.s3.get with
---`resume = true` does both); only one extractor at a time may use it (BUSY otherwise).
---Any failure other than INTERRUPTED removes it.
---@param dir string
---@param opts? skafos.zip.ExtractOptions|{resumable?: boolean}  (progress is not used)
---@return skafos.ZipExtractor|nil extractor
---@return skafos.Error|nil err
function zip.extractor(dir, opts) end

return zip
