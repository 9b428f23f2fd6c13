"""Opening a trial file safely and decoding it to text: the first stage of reading a trial table.

Guarantees (each refusal is a :class:`~perceptlab.errors.PerceptLabError` naming the file and a fix):

- Only regular files are read. A symlink to ``/dev/zero``, a FIFO, a socket or a device is refused
  *before* it is opened, so reading can never block or run without end.
- Size is bounded: a file over :data:`MAX_FILE_BYTES`, or a gzip file that decompresses to more than
  that, is refused; gzip is decompressed in pieces so the limit holds while reading.
- ``.gz`` (any gzip-compressed file, recognised by its magic bytes) is decompressed; ZIP archives and
  Excel workbooks are refused with the fix (extract / save as CSV).
- Encoding, unless given: a byte-order mark (UTF-8, UTF-16 LE/BE) decides; otherwise UTF-16 without
  a BOM is recognised by its NUL bytes (every other byte 0 in ASCII text), then UTF-8 is tried; text
  that is not valid UTF-8 is decoded as Windows-1252 (Latin-1 for the 5 bytes cp1252 leaves
  undefined) and the report says so, naming the first non-UTF-8 byte. Binary data (NUL bytes in a
  file that is not UTF-16) is refused.
"""

from __future__ import annotations

import codecs
import os
import stat
import zlib
from pathlib import Path

from perceptlab.errors import PerceptLabError

MAX_FILE_BYTES = 2 * 1024**3
"""The largest trial file read (on disk, and after decompression)."""

_SPECIAL = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: Path) -> int:
    """The size of ``path`` if it is a regular file (symlinks followed); refuse anything else."""
    source = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        how = " (a broken symbolic link)" if path.is_symlink() else ""
        raise PerceptLabError(f"trial file {source} does not exist{how}") from None
    except OSError as exc:
        raise PerceptLabError(f"trial file {source} cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise PerceptLabError(f"{source} is a folder, not a trial file",
                              fix="pass the folder to `perceptlab analyze FOLDER` to read every "
                              "trial file in it, or pick one file")
    if not stat.S_ISREG(st.st_mode):
        what = next((name for test, name in _SPECIAL if test(st.st_mode)), "not a regular file")
        link = f" ({path} links to {os.path.realpath(path)})" if path.is_symlink() else ""
        raise PerceptLabError(f"{source} is {what}, not a regular file{link}; it is not read",
                              fix="point at the trial file itself (CSV, TSV, JSON)")
    if st.st_size > MAX_FILE_BYTES:
        raise PerceptLabError(f"{source} is {st.st_size / 1024**3:.1f} GiB, more than the "
                              f"{MAX_FILE_BYTES // 1024**3} GiB a trial file may hold",
                              fix="split the file, e.g. one file per participant, and load the folder")
    return st.st_size


def _gunzip(data: bytes, source: str) -> bytes:
    """Decompress gzip (several members allowed) in pieces, never past :data:`MAX_FILE_BYTES`."""
    parts: list[bytes] = []
    size = 0
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=47)  # gzip or zlib header
            pos, pending = 0, b""
            while not d.eof:
                if d.unconsumed_tail:
                    pending = d.unconsumed_tail
                elif pos < len(rest):
                    pending, pos = rest[pos:pos + (1 << 24)], pos + (1 << 24)
                else:
                    raise PerceptLabError(f"{source}: the gzip data is truncated (the file ends "
                                          "early)", fix="copy or download the file again")
                chunk = d.decompress(pending, 1 << 24)
                parts.append(chunk)
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise PerceptLabError(f"{source}: decompresses to more than "
                                          f"{MAX_FILE_BYTES // 1024**3} GiB; it is not read",
                                          fix="split the data into smaller files")
            rest = d.unused_data + rest[pos:]
            if rest and rest[:2] != b"\x1f\x8b":
                break  # trailing bytes after the last member (padding): ignored
    except zlib.error as exc:
        raise PerceptLabError(f"{source}: a gzip file that cannot be decompressed ({exc})",
                              fix="compress the file again (gzip FILE), or save it uncompressed") from None
    return b"".join(parts)


def read_source(path: Path) -> tuple[bytes, list[str]]:
    """The bytes of a trial file (decompressed when gzip) and notes on what was done."""
    source = str(path)
    check_regular_file(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PerceptLabError(f"trial file {source} cannot be read: {exc.strerror}") from None
    notes: list[str] = []
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, source)
        notes.append("gzip-compressed: decompressed")
    if data[:4] == b"PK\x03\x04":
        what = ("an Excel workbook (.xlsx)" if path.suffix.lower() in (".xlsx", ".xlsm")
                else "a ZIP archive")
        raise PerceptLabError(f"{source}: is {what}, not a text table",
                              fix="save the sheet as CSV (Excel: File > Save As > CSV UTF-8)"
                              if "Excel" in what else "extract the trial files and load the folder")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise PerceptLabError(f"{source}: is an old Excel/Office file (.xls), not a text table",
                              fix="save the sheet as CSV (Excel: File > Save As > CSV UTF-8)")
    return data, notes


def _utf16_without_bom(data: bytes) -> str | None:
    head = data[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def decode(data: bytes, source: str, encoding: str | None) -> tuple[str, str, list[str]]:
    """Text, the encoding used and notes (see the module docstring for the rules)."""
    if encoding is not None:
        try:
            return data.decode(encoding), encoding, []
        except (UnicodeDecodeError, LookupError) as exc:
            raise PerceptLabError(f"{source}: cannot decode as {encoding}: {exc}",
                                  fix="leave the encoding out to have it detected") from None
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), codec, []
            except UnicodeDecodeError as exc:
                raise PerceptLabError(
                    f"{source}: starts with a {codec.upper()} byte-order mark but is not valid "
                    f"{codec.upper()} (byte offset {exc.start})",
                    fix="re-save the file as UTF-8") from None
    codec = _utf16_without_bom(data)
    if codec is not None:
        try:
            return data.decode(codec), codec, [f"encoding detected as {codec.upper()} without a "
                                               "byte-order mark (NUL bytes between characters)"]
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:65536]:
        raise PerceptLabError(f"{source}: holds binary data (NUL bytes), not a text table",
                              fix="export the trials as CSV, TSV or JSON")
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        bad = exc.start
    line = data.count(b"\n", 0, bad) + 1
    byte = data[bad]
    try:
        text, codec = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, codec = data.decode("latin-1"), "latin-1"
    return text, codec, [
        f"not UTF-8 (byte 0x{byte:02x} on line {line}): decoded as "
        + ("Windows-1252" if codec == "cp1252" else "Latin-1")
        + "; if names look wrong, give the encoding (CLI --encoding, e.g. --encoding mac-roman)"]
