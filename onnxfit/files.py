"""File helpers that need neither onnx nor numpy: atomic writes and content digests (what a cache
hit in a fresh process uses)."""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import xxhash

from onnxfit.errors import OnnxfitError, first_line

__all__ = ["file_digest", "write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write one file atomically (temporary file beside it, then rename): a reader never sees half
    of it, and a failure leaves the previous file or nothing. OS errors become OnnxfitError."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OnnxfitError(f"{path}: output directory '{parent}' does not exist")
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    except OSError as exc:
        raise OnnxfitError(f"{path}: cannot write to '{parent}' ({first_line(exc)})") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        # mkstemp makes the file 0600; what we write is read like any file the user saves.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise OnnxfitError(f"{path}: cannot write ({first_line(exc)})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    """The process umask (os.umask can only be read by setting it: set it back at once)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_digest(path: str | os.PathLike) -> str:
    """Fast content digest (xxh3-128) of one file, hashed from a memory map (no copies)."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                hasher.update(mapped)
    return hasher.hexdigest()
