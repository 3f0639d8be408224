"""The shared libraries an ELF file asks for (DT_NEEDED), read without readelf or ldd.

build.py uses it to check that every library of a Linux bundle finds what it needs inside the
bundle or among the libraries a desktop has; binutils need not be installed on the build host.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

_SHT_DYNAMIC = 6
_DT_NEEDED = 1


def needed_libraries(path: Path) -> Optional[list[str]]:
    """DT_NEEDED names of a 64-bit little-endian ELF file, or None if it is not one.

    Reads only the headers and the dynamic section: torch's libraries are hundreds of MB."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            (shoff,) = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            fh.seek(shoff)
            table = fh.read(shentsize * shnum)
            sections = [
                struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)
            ]
            for sh in sections:
                if sh[1] == _SHT_DYNAMIC:
                    strtab = sections[sh[6]]  # sh_link: the string table of .dynamic
                    return _dynamic_needed(_read(fh, sh[4], sh[5]), _read(fh, strtab[4], strtab[5]))
    except (OSError, struct.error, IndexError):
        return None
    return []  # a static executable or an object without a dynamic section


def _read(fh, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


def _dynamic_needed(dynamic: bytes, strings: bytes) -> list[str]:
    names = []
    for pos in range(0, len(dynamic) - 15, 16):
        tag, value = struct.unpack_from("<qQ", dynamic, pos)
        if tag == 0:
            break
        if tag == _DT_NEEDED:
            end = strings.index(b"\0", value)
            names.append(strings[value:end].decode("utf-8", "replace"))
    return names
