#!/usr/bin/python3
"""Writes the hostile-archive corpus for skafos.zip's extraction tests.

Usage: make_hostile.py OUTDIR
Writes OUTDIR/<case>.zip for every case and OUTDIR/manifest.json, a list of
{"name", "file", "code", "opts", "why"}: extracting the file with opts into a fresh
target must fail with err.code == code. Every path-escape case aims at the file
"sentinel.txt" placed next to the target directory, so a test can tell an escape by
that file's content. OUTDIR/stream/<case>.zip and OUTDIR/stream_manifest.json, in the
same form, hold archives that zip.extract reads from the file but that the streaming
extractor, reading front to back, must refuse with code. Only the standard library is used; the archives are built field by
field because well-behaved writers refuse to produce most of them.
"""
import json
import os
import struct
import sys
import zlib

S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFDIR = 0o040000


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


class Entry:
    def __init__(self, name, data=b"", method=8, mode=S_IFREG | 0o644, **over):
        self.name = name if isinstance(name, bytes) else name.encode()
        self.data = data
        self.method = method
        self.mode = mode
        self.payload = deflate(data) if method == 8 else data
        self.crc = zlib.crc32(data)
        self.usize = len(data)
        self.csize = len(self.payload)
        self.flags = 0
        self.made_by = 0x031E  # Unix, as Info-ZIP writes
        self.local_name = None
        for k, v in over.items():
            setattr(self, k, v)


def local_record(e):
    """The local header (its CRC and sizes may be overridden by local_crc, local_csize,
    local_usize), the data and, when e.descriptor is (crc, csize, usize), a data
    descriptor; junk bytes in e.before come first."""
    lname = e.local_name if e.local_name is not None else e.name
    crc, csize, usize = (getattr(e, "local_" + k, v)
                         for k, v in (("crc", e.crc), ("csize", e.csize), ("usize", e.usize)))
    out = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, e.flags, e.method, 0, 0x21,
                      crc & 0xFFFFFFFF, csize, usize, len(lname), 0) + lname + e.payload
    if getattr(e, "descriptor", None):
        out += struct.pack("<IIII", 0x08074B50, *e.descriptor)
    return getattr(e, "before", b"") + out


def build(entries, fix=None):
    """Lays out local headers, data and the central directory. fix(offsets, cd) may
    rewrite the list of local header offsets used in the directory."""
    out = bytearray()
    offsets = []
    for e in entries:
        offsets.append(len(out) + len(getattr(e, "before", b"")))
        if not getattr(e, "no_local", False):
            out += local_record(e)
    out += getattr(fix, "before_cd", b"")
    if fix and callable(fix):
        offsets = fix(offsets)
    cd_start = len(out)
    for e, off in zip(entries, offsets):
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, e.made_by, 20, e.flags, e.method,
                           0, 0x21, e.crc & 0xFFFFFFFF, e.csize, e.usize, len(e.name), 0, 0,
                           0, 0, (e.mode << 16) & 0xFFFFFFFF, off)
        out += e.name
    cd_size = len(out) - cd_start
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), cd_size,
                       cd_start, 0)
    return bytes(out)


def link(name, target):
    return Entry(name, target.encode(), method=0, mode=S_IFLNK | 0o777)


OK = b"fine\n"
CASES = []


def case(name, code, why, data, opts=None):
    CASES.append({"name": name, "code": code, "why": why, "data": data, "opts": opts or {}})


U, I = "UNSAFE_ARCHIVE", "INTEGRITY"

# names
case("absolute", U, "absolute name", build([Entry("/tmp/skafos-hostile-abs", OK)]))
case("drive_letter", U, "drive letter", build([Entry("C:/sentinel.txt", OK)]))
case("backslash", U, "backslash separator", build([Entry("..\\sentinel.txt", OK)]))
case("dotdot", U, "'..' escape", build([Entry("../sentinel.txt", OK)]))
case("dotdot_inner", U, "'..' in the middle", build([Entry("a/../../sentinel.txt", OK)]))
case("dot_then_dotdot", U, "'..' behind a harmless './'", build([Entry("./../sentinel.txt", OK)]))
case("dot_inner_dotdot", U, "'..' behind an inner '.'",
     build([Entry("a/./../../sentinel.txt", OK)]))
case("dot_last", U, "a file named '.'", build([Entry("a/.", OK)]))
case("dot_empty_component", U, "'./' then an empty component", build([Entry(".//sentinel.txt", OK)]))
case("dot_drive_letter", U, "a drive letter once './' is dropped", build([Entry("./C:/sentinel.txt", OK)]))
case("dot_duplicate", U, "'./a.txt' and 'a.txt' are one name",
     build([Entry("./a.txt", OK), Entry("a.txt", b"x")]))
ROOT = dict(method=0, mode=S_IFDIR | 0o755)
case("root_twice", U, "the root './' twice", build([Entry("./", b"", **ROOT), Entry("./", b"", **ROOT)]))
case("root_with_data", U, "the root './' with data", build([Entry("./", OK, **ROOT)]))
# names from DOS and Windows file systems: backslashes are separators, checked the same way
DOS = dict(made_by=0x0014)  # MS-DOS/FAT host
NTFS = dict(made_by=0x0A14)  # Windows NTFS host
case("dos_dotdot", U, "'.\\..\\' from a DOS-made archive", build([Entry(".\\..\\sentinel.txt", OK, **DOS)]))
case("dos_dotdot_inner", U, "'..' inside a Windows name",
     build([Entry("a\\..\\..\\sentinel.txt", OK, **NTFS)]))
case("dos_absolute", U, "a name from the root of the drive",
     build([Entry("\\tmp\\skafos-hostile-abs", OK, **DOS)]))
case("dos_unc", U, "a UNC path", build([Entry("\\\\server\\share\\sentinel.txt", OK, **NTFS)]))
case("dos_drive_letter", U, "a drive letter", build([Entry("C:\\sentinel.txt", OK, **NTFS)]))
case("dos_duplicate", U, "'a\\b.txt' and 'a/b.txt' are one name",
     build([Entry("a\\b.txt", OK, **DOS), Entry("a/b.txt", b"x", **DOS)]))
case("dos_under_file", U, "a Windows name under a file",
     build([Entry("a", OK, **NTFS), Entry("a\\b.txt", OK, **NTFS)]))
case("backslash_unix", U, "a backslash in a Unix-made name, harmless were it a separator",
     build([Entry("a\\b.txt", OK)]))
case("backslash_dotdot_unix", U, "'.\\..\\' from a Unix-made archive is no separator either",
     build([Entry(".\\..\\sentinel.txt", OK)]))
# names without the UTF-8 flag: UTF-8 when valid, else CP437
case("cp437_duplicate", U, "a CP437 name that reads as another entry's UTF-8 name",
     build([Entry("caf\u00e9.txt", OK, flags=0x800), Entry(b"caf\x82.txt", b"x")]))
case("cp437_case_duplicate", U, "a CP437 name that differs from another only by ASCII case",
     build([Entry(b"README\x82", OK), Entry("readme\u00e9", b"x")]))
case("utf8_flag_invalid", U, "a name flagged UTF-8 that is not UTF-8",
     build([Entry(b"caf\x82.txt", OK, flags=0x800)]))
case("empty_component", U, "empty component", build([Entry("a//b.txt", OK)]))
case("empty_name", U, "empty name", build([Entry("", OK)]))
case("nul_in_name", U, "NUL byte", build([Entry(b"a.txt\x00../../sentinel.txt", OK)]))
case("duplicate", U, "same name twice", build([Entry("a.txt", OK), Entry("a.txt", b"x")]))
case("case_duplicate", U, "names differ by case only",
     build([Entry("Model.bin", OK), Entry("model.bin", b"x")]))
case("case_duplicate_dirs", U, "directories differ by case only",
     build([Entry("Dir/", b"", method=0, mode=S_IFDIR | 0o755),
            Entry("dir/", b"", method=0, mode=S_IFDIR | 0o755)]))
case("file_then_child", U, "an entry under a file",
     build([Entry("a", OK), Entry("a/b.txt", OK)]))
case("local_name_differs", U, "local header names another file",
     build([Entry("a.txt", OK, local_name=b"../sentinel.txt")]))
# symlinks
case("symlink_default", U, "symlink refused by default", build([link("l", "a.txt")]))
case("symlink_outside", U, "symlink leaving the target",
     build([link("l", "../sentinel.txt")]), {"symlinks": "inside"})
case("symlink_absolute", U, "absolute symlink target",
     build([link("l", "/etc/passwd")]), {"symlinks": "inside"})
case("symlink_chain", U, "symlink resolved through another symlink",
     build([link("top", "."), Entry("d1/d2/", b"", method=0, mode=S_IFDIR | 0o755),
            link("d1/d2/l", "../../top/..")]), {"symlinks": "inside"})
case("write_through_symlink", U, "a file under a symlink entry",
     build([link("l", "."), Entry("l/x.txt", OK)]), {"symlinks": "inside"})
# overlapping data (the overlapping-file zip bomb)
two = [Entry("a.txt", b"A" * 5000), Entry("b.txt", b"B" * 5000)]
case("overlap_same_header", U, "two entries share one local header",
     build(two, fix=lambda offs: [offs[0], offs[0]]))
inner = Entry("inner.txt", b"I" * 100, no_local=True)
outer = Entry("outer.bin", local_record(inner), method=0)
case("overlap_nested", U, "an entry's data hold another entry's header",
     build([outer, inner], fix=lambda offs: [offs[0], offs[0] + 30 + len(outer.name)]))
# sizes and checksums
big = b"skafos " * 4000
case("more_than_declared", I, "inflates to more than declared",
     build([Entry("a.txt", big, usize=100, crc=zlib.crc32(big[:100]))]))
case("fewer_than_declared", I, "inflates to fewer than declared",
     build([Entry("a.txt", big, usize=len(big) + 10)]))
case("crc_mismatch", I, "CRC mismatch", build([Entry("a.txt", big, crc=zlib.crc32(big) ^ 1)]))
case("stored_sizes_differ", I, "stored entry with two sizes",
     build([Entry("a.txt", OK, method=0, usize=len(OK) + 1)]))
case("corrupt_deflate", I, "garbage compressed data",
     build([Entry("a.txt", big, payload=b"\xff" * 64, csize=64)]))
e = Entry("a.txt", big)
case("trailing_compressed", I, "compressed size longer than the stream",
     build([Entry("a.txt", big, payload=e.payload + b"junk", csize=e.csize + 4)]))
case("short_compressed", I, "compressed size cut short",
     build([Entry("a.txt", big, payload=e.payload[:-20], csize=e.csize - 20)]))
whole = build([Entry("a.txt", big), Entry("b.txt", big)])
case("truncated", I, "archive cut in half", whole[: len(whole) // 2])
case("truncated_cd", I, "central directory cut", whole[:-30] + whole[-22:])
case("no_end_record", I, "not a zip at all", b"PK\x03\x04" + b"\0" * 100)
case("count_lie", I, "end record counts more entries than exist",
     whole[:-12] + struct.pack("<H", 7) + whole[-10:])
case("data_past_directory", U, "data run into the central directory",
     build([Entry("a.txt", big, csize=e.csize + 100000)]))
# refused kinds of entries
case("encrypted", U, "encrypted entry", build([Entry("a.txt", OK, flags=1)]))
case("unsupported_method", U, "bzip2 entry", build([Entry("a.txt", OK, method=12)]))
case("dir_with_data", U, "directory entry with data",
     build([Entry("d/", OK, method=0, mode=S_IFDIR | 0o755)]))
# limits, counted on bytes written
zeros = bytes(4 << 20)
case("max_size", U, "over max_size", build([Entry("z.bin", zeros)]),
     {"max_size": 1 << 20})
case("max_ratio", U, "expansion ratio over max_ratio", build([Entry("z.bin", zeros)]),
     {"max_ratio": 50})
case("bomb_default_ratio", U, "64 MiB of zeros from a tiny archive",
     build([Entry("z%d.bin" % i, bytes(16 << 20)) for i in range(4)]))


# read front to back: what only the streaming extractor sees
STREAM_CASES = []


def stream_case(name, why, data):
    STREAM_CASES.append({"name": name, "code": I, "why": why, "data": data, "opts": {}})


class Gap:
    """A `fix` for build() that leaves junk between the last entry and the directory."""
    before_cd = b"junk" * 4


stream_case("bytes_after_end", "bytes after the end record",
            build([Entry("a.txt", big)]) + b"trailing")
stream_case("gap_between_entries", "junk between two entries",
            build([Entry("a.txt", big), Entry("b.txt", OK, before=b"junk")]))
stream_case("gap_before_directory", "junk between the entries and the directory",
            build([Entry("a.txt", big)], fix=Gap()))
stream_case("local_crc_differs", "the local header gives another CRC",
            build([Entry("a.txt", big, local_crc=zlib.crc32(big) ^ 1)]))
stream_case("local_size_differs", "the local header gives another size",
            build([Entry("a.txt", OK, method=0, local_csize=2, local_usize=2)]))
d = Entry("a.txt", big, flags=8)
stream_case("descriptor_differs", "the data descriptor gives another CRC",
            build([Entry("a.txt", big, flags=8, local_crc=0, local_csize=0, local_usize=0,
                         descriptor=(d.crc ^ 1, d.csize, d.usize))]))


def write(out, cases, manifest_path):
    os.makedirs(out, exist_ok=True)
    manifest = []
    for c in cases:
        path = os.path.join(out, c["name"] + ".zip")
        with open(path, "wb") as f:
            f.write(c["data"])
        manifest.append({"name": c["name"], "file": path, "code": c["code"],
                         "opts": c["opts"], "why": c["why"]})
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    return len(manifest)


def main():
    out = sys.argv[1]
    n = write(out, CASES, os.path.join(out, "manifest.json"))
    write(os.path.join(out, "stream"), STREAM_CASES, os.path.join(out, "stream_manifest.json"))
    print(n)


if __name__ == "__main__":
    main()
