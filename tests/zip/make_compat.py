#!/usr/bin/python3
"""Writes archives made by other tools, for skafos's compatibility matrix.

Usage: make_compat.py OUTDIR
Packs a model tree (nested and empty directories, an empty file, non-ASCII names, data
that compresses and data that does not) with the real tools: Info-ZIP zip (stored and
deflated), 7z (stored and deflated), bsdtar (stored and deflated, from "." so every name
starts with "./"), Python's zipfile (zip64 forced, data descriptors, empty directories),
plus names as Windows tools write them (backslashes, made on a DOS/NTFS file system) and
names in CP437 without the UTF-8 flag (Info-ZIP and 7z given such file names).

Writes OUTDIR/<case>.zip and OUTDIR/manifest.json, a list of {"name", "file", "expect",
"tool"}: extracting "file" must give exactly the tree at "expect" (names, types, bytes).
Fails (nonzero exit) when a tool is missing or fails.
"""
import io
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile

ENV = dict(os.environ, LC_ALL="C.UTF-8", TZ="UTC")

# the model tree: relative path -> bytes (None for an empty directory)
random.seed(19)
MODEL = {
    "Manifest.json": b'{"fileFormatVersion": "1.0.0", "itemInfoEntries": {}}\n',
    "Data/com.apple.CoreML/weights/weight.bin": bytes(random.getrandbits(8) for _ in range(300000)),
    "Data/com.apple.CoreML/model.mlmodel": b"layer { name: 'dense' }\n" * 8000,
    "labels.txt": "".join("class %d\n" % i for i in range(1000)).encode(),
    "empty.txt": b"",
    "empty_dir": None,
    "deep/a/b/c/leaf.txt": b"leaf\n",
    "deep/a/b/empty": None,
    "caf\u00e9.txt": "caf\u00e9 cr\u00e8me\n".encode(),
    "donn\u00e9es/\u00fcber/\u6a21\u578b.bin": bytes(range(256)) * 40,
    "run.sh": b"#!/bin/sh\necho run\n",
}


def write_tree(root, files):
    for rel, data in files.items():
        path = os.path.join(root, rel) if isinstance(rel, str) else os.path.join(os.fsencode(root), rel)
        if data is None:
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def run(argv, cwd):
    r = subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout.decode(errors="replace")))


class Unseekable(io.RawIOBase):
    """A file Python's zipfile cannot seek in: it then puts sizes in data descriptors."""

    def __init__(self, f):
        self.f = f

    def writable(self):
        return True

    def write(self, b):
        return self.f.write(b)


def python_zip64(out, src):
    """zip64 extra fields forced on every entry, data descriptors after each entry's data,
    stored and deflated entries, empty directories made with mkdir."""
    with open(out, "wb") as f, zipfile.ZipFile(Unseekable(f), "w") as z:
        for i, rel in enumerate(sorted(MODEL)):
            if MODEL[rel] is None:
                z.mkdir(rel)
                continue
            info = zipfile.ZipInfo.from_file(os.path.join(src, rel), rel)
            info.compress_type = zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED
            with z.open(info, "w", force_zip64=True) as w:
                w.write(MODEL[rel])


def windows(out):
    """Names as Windows tools write them: backslashes, "version made by" a DOS (FAT) or
    NTFS file system, directories marked with the DOS directory attribute."""
    entries = [  # (stored name, host system, data or None for a directory)
        ("Model\\", 0, None),
        ("Model\\Manifest.json", 0, MODEL["Manifest.json"]),
        ("Model\\Data\\weights.bin", 0, MODEL["Data/com.apple.CoreML/weights/weight.bin"]),
        ("Model\\Data\\model.txt", 10, MODEL["Data/com.apple.CoreML/model.mlmodel"]),
        ("Model\\empty\\", 10, None),
        (".\\Model\\labels.txt", 10, MODEL["labels.txt"]),
        ("Model\\Data\\nested\\deep\\leaf.txt", 14, b"leaf\n"),
    ]
    expect = {}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, host, data in entries:
            info = zipfile.ZipInfo(name, (2023, 5, 1, 12, 0, 0))
            info.create_system = host
            info.external_attr = 0x10 if data is None else 0x20
            info.compress_type = zipfile.ZIP_STORED if data is None else zipfile.ZIP_DEFLATED
            z.writestr(info, data or b"")
            rel = name.replace("\\", "/").removeprefix("./").rstrip("/")
            expect[rel] = data
    return expect


# CP437 bytes of the names (0x82 e-acute, 0x8e 0x99 0x9a A/O/U umlaut, 0xe1 sharp s)
CP437 = {
    b"caf\x82.txt": b"coffee\n",
    b"\x8e\x99\x9a.bin": bytes(range(200)),
    b"Donn\x82es/r\x82sum\x82.txt": b"summary\n",
    b"Donn\x82es/Stra\xe1e/": None,
}


def cp437_expect():
    return {k.decode("cp437").rstrip("/"): v for k, v in CP437.items()}


def main():
    out = os.path.abspath(sys.argv[1])
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    trees = os.path.join(out, "trees")
    model = write_tree(os.path.join(trees, "model"), MODEL)
    os.chmod(os.path.join(model, "run.sh"), 0o755)
    cp_src = os.path.join(trees, "cp437-src")
    os.makedirs(cp_src)
    write_tree(cp_src, {k.rstrip(b"/"): v for k, v in CP437.items()})
    manifest = []

    def case(name, tool, expect, make):
        path = os.path.join(out, name + ".zip")
        make(path)
        manifest.append({"name": name, "file": path, "expect": expect, "tool": tool})

    case("infozip-store", "zip -r -0", model, lambda p: run(["zip", "-q", "-r", "-0", p, "."], model))
    case("infozip-deflate", "zip -r -9", model, lambda p: run(["zip", "-q", "-r", "-9", p, "."], model))
    case("7z-store", "7z a -tzip -mx=0", model,
         lambda p: run(["7z", "a", "-bd", "-bso0", "-tzip", "-mx=0", p, "."], model))
    case("7z-deflate", "7z a -tzip", model, lambda p: run(["7z", "a", "-bd", "-bso0", "-tzip", p, "."], model))
    case("bsdtar-store", "bsdtar --options zip:compression=store", model,
         lambda p: run(["bsdtar", "--format", "zip", "--options", "zip:compression=store", "-cf", p, "."], model))
    case("bsdtar-deflate", "tar -a -cf model.zip .", model, lambda p: run(["bsdtar", "-a", "-cf", p, "."], model))
    case("python-zip64-descriptors", "zipfile force_zip64, unseekable", model,
         lambda p: python_zip64(p, model))
    win_expect = os.path.join(trees, "windows")
    case("windows-backslashes", "zipfile as Windows tools write", win_expect,
         lambda p: write_tree(win_expect, windows(p)))
    cp_expect = write_tree(os.path.join(trees, "cp437"), cp437_expect())
    case("infozip-cp437", "zip -r, CP437 file names", cp_expect,
         lambda p: run(["zip", "-q", "-r", p, "."], cp_src))
    case("7z-cp437", "7z a -tzip, CP437 file names", cp_expect,
         lambda p: run(["7z", "a", "-bd", "-bso0", "-tzip", p, "."], cp_src))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(len(manifest))


if __name__ == "__main__":
    main()
