"""Per-machine cache of rewritten models: what ``onnxfit.prepare()`` and ``onnxfit cache`` use.

Applications rewrite a model once per machine at load time and reuse it afterwards. Writing
``model_coreml.onnx`` next to the original and trusting its mtime breaks on read-only model
directories, on concurrent start-ups and on half-written files; this cache does it properly:

1. Key: content digest of the model and its external data (xxh3-128, memoised by
   (size, mtime_ns, inode) so an unchanged file is not re-hashed), pass names and versions,
   target, onnxruntime version, input shapes, dynamic batch, onnxfit version, OS and CPU arch.
2. Entry: ``entries/<key>/`` holding ``model.onnx`` (+ ``model.onnx.data``) and ``meta.json``
   (source path, key parts, artefact digest and stat, pass reports, created time). Last use is
   the mtime of ``entries/<key>/last_used``, so a hit writes no JSON.
3. Atomic: an entry is built in ``tmp/`` inside the cache and renamed into place; a killed
   build leaves no entry. Concurrent processes take an inter-process lock per key: one builds,
   the others wait and return the same path.
4. Integrity: on a hit the artefact is re-hashed and checked against its recorded digest only
   when its (size, mtime_ns, inode) differs from the stat recorded with that digest, so a hit
   in a fresh process costs a few ``stat`` calls, not a read of the whole model; a corrupted or
   partial entry found that way is discarded and rebuilt, never served. ``onnxfit cache verify``
   (:meth:`Cache.verify`) re-hashes every entry and removes the damaged ones, for damage that
   keeps a file's size and times (a disk error, a tool that restores mtimes).
5. When no pass changes the model, the entry records that and ``prepare`` returns the source.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import xxhash
from filelock import FileLock

from onnxfit.errors import OnnxfitError
from onnxfit.files import file_digest, write_atomic
from onnxfit.versions import installed_ort_text

__all__ = ["Cache", "CacheEntry", "DamagedEntry", "PrepareResult", "default_cache_dir", "parse_size"]

log = logging.getLogger(__name__)

ARTEFACT = "model.onnx"
_META = "meta.json"
_LAST_USED = "last_used"
_DIGESTS = "digests.json"
_PROVIDERS = "providers.json"


def default_cache_dir() -> Path:
    """``$ONNXFIT_CACHE_DIR``, else the platform's user cache directory for onnxfit."""
    if os.environ.get("ONNXFIT_CACHE_DIR"):
        return Path(os.environ["ONNXFIT_CACHE_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("onnxfit"))


@dataclass
class PrepareResult:
    path: Path  # the model to load: the cached artefact, or the source when nothing changed
    hit: bool
    key: str
    rewritten: bool
    meta: dict


@dataclass
class CacheEntry:
    key: str
    directory: Path
    meta: dict
    size: int
    last_used: float


@dataclass
class DamagedEntry:
    """An entry ``onnxfit cache verify`` removed, and why."""

    key: str
    source: str | None
    reason: str


_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str) -> int:
    """``"2GB"`` -> 2_000_000_000; ``"512MiB"``, ``"100k"``-style forms and plain bytes work too."""
    cleaned = text.strip().upper().replace(" ", "")
    number = cleaned.rstrip("KMGTIB")
    unit = cleaned[len(number):]
    unit = unit + "B" if unit in ("K", "M", "G", "T") else unit
    try:
        return int(float(number) * _SIZE_UNITS[unit])
    except (KeyError, ValueError):
        raise OnnxfitError(f"bad size '{text}': use e.g. 2GB, 500MB or 1GiB") from None


class Cache:
    """One cache directory. Methods are safe to call from several processes at once."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()

    # ------------------------------------------------------------------ layout
    @property
    def entries_dir(self) -> Path:
        return self.directory / "entries"

    def ensure(self) -> None:
        try:
            for sub in ("entries", "tmp", "locks"):
                (self.directory / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OnnxfitError(f"cache directory '{self.directory}' is not writable ({exc.strerror}); "
                               f"set ONNXFIT_CACHE_DIR to a writable directory") from None

    # --------------------------------------------------------------- source key
    def source_digest(self, model_path: Path) -> str:
        """Digest of the model file and its external data files, memoised by stat.

        The memo (``digests.json``) maps a file's (path, size, mtime_ns, inode) to its digest and,
        for a model file, to the external data files it names: an unchanged model costs a few
        ``stat`` calls, not a read of hundreds of MB.
        """
        memo = _read_json(self.directory / _DIGESTS) or {}
        added: dict[str, dict] = {}

        def remembered(path: Path, compute) -> dict:
            st = path.stat()
            memo_key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
            if memo_key not in memo:
                memo[memo_key] = added[memo_key] = compute(path)
            return memo[memo_key]

        model = remembered(model_path, lambda p: {"digest": file_digest(p), "external": _external_files(p)})
        parts = [model["digest"]] + [
            remembered(model_path.parent / name, lambda p: {"digest": file_digest(p)})["digest"]
            for name in model["external"]
        ]
        if added:
            self._remember_digests(added)
        return parts[0] if len(parts) == 1 else file_digest_of_strings(parts)

    def _remember_digests(self, added: dict[str, dict]) -> None:
        """Merge new digests into the memo under its lock: concurrent writers each keep theirs.

        Records of an earlier state of the same files are dropped, so the memo holds one record
        per file rather than one per edit.
        """
        self.ensure()
        memo_path = self.directory / _DIGESTS
        changed = {key.rsplit("|", 3)[0] for key in added}
        with FileLock(str(self.directory / "locks" / f"{_DIGESTS}.lock")):
            memo = {key: value for key, value in (_read_json(memo_path) or {}).items()
                    if key.rsplit("|", 3)[0] not in changed}
            _write_json_atomic(memo_path, memo | added)

    # --------------------------------------------------------------- entries
    def entries(self) -> list[CacheEntry]:
        found = []
        if not self.entries_dir.is_dir():
            return found
        for directory in sorted(self.entries_dir.iterdir()):
            meta = _read_json(directory / _META)
            if meta is None:
                continue
            size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
            last_used_file = directory / _LAST_USED
            last_used = last_used_file.stat().st_mtime if last_used_file.exists() else meta.get("created", 0)
            found.append(CacheEntry(directory.name, directory, meta, size, last_used))
        return found

    def total_size(self) -> int:
        return sum(e.size for e in self.entries())

    def clear(self) -> int:
        entries = self.entries()
        for entry in entries:
            self._remove(entry.directory)
        if (self.directory / "tmp").is_dir():
            shutil.rmtree(self.directory / "tmp", ignore_errors=True)
        return len(entries)

    def prune(self, max_size: int) -> list[CacheEntry]:
        """Evict least-recently-used entries until the cache holds at most ``max_size`` bytes."""
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.size for e in entries)
        evicted = []
        for entry in entries:
            if total <= max_size:
                break
            with FileLock(str(self.directory / "locks" / f"{entry.key}.lock")):
                self._remove(entry.directory)
            total -= entry.size
            evicted.append(entry)
        return evicted

    def _remove(self, directory: Path) -> None:
        # Rename first so a concurrent reader never sees a half-deleted entry as valid.
        doomed = self.directory / "tmp" / f"doomed-{directory.name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            doomed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(directory, doomed)
        except OSError:
            doomed = directory
        shutil.rmtree(doomed, ignore_errors=True)

    # --------------------------------------------------------------- lookup/build
    def lookup(self, key: str) -> dict | None:
        """The entry's meta if it is complete and intact, else None (a damaged entry is removed)."""
        directory = self.entries_dir / key
        if not directory.exists():
            return None
        meta = _read_json(directory / _META)
        damage = "no readable meta.json" if meta is None else self._damage(directory, meta, rehash=False)
        if damage is None:
            return meta
        log.warning("cache entry %s is damaged (%s); rebuilding it", key, damage)
        self._remove(directory)
        return None

    def verify(self) -> tuple[int, list[DamagedEntry]]:
        """Re-hash every entry's files whatever their stat; remove the damaged entries.

        Returns how many entries were checked and the damaged ones.
        """
        directories = sorted(self.entries_dir.iterdir()) if self.entries_dir.is_dir() else []
        if directories:
            self.ensure()
        damaged = []
        for directory in directories:
            # The key's lock: a build of the same key neither races the check nor is removed by it.
            with FileLock(str(self.directory / "locks" / f"{directory.name}.lock")):
                meta = _read_json(directory / _META)
                damage = "no readable meta.json" if meta is None else self._damage(directory, meta, rehash=True)
                if damage is not None:
                    self._remove(directory)
                    damaged.append(DamagedEntry(directory.name, (meta or {}).get("source"), damage))
        return len(directories), damaged

    def _damage(self, directory: Path, meta: dict, rehash: bool) -> str | None:
        """Why an entry must not be served, or None.

        A file whose (size, mtime_ns, inode) equals the stat recorded with its digest is trusted
        without reading it, unless ``rehash``. A file re-hashed and found intact under a new stat
        (a copied or restored cache) gets that stat recorded, so the next hit skips the hash.
        """
        if meta.get("unchanged"):
            return None
        recorded = meta.get("artefact", {})
        if not recorded:
            return "no artefact recorded"
        new_stats = {}
        for name, expected in recorded.items():
            try:
                stat = _stat_key(directory / name)
            except OSError:
                return f"{name} is missing"
            if stat[0] != expected["size"]:
                return f"{name} is {stat[0]} bytes, {expected['size']} recorded"
            if stat == expected.get("stat") and not rehash:
                continue
            if file_digest(directory / name) != expected["digest"]:
                return f"{name} does not match its recorded digest"
            if stat != expected.get("stat"):
                new_stats[name] = stat
        if new_stats:
            for name, stat in new_stats.items():
                recorded[name]["stat"] = stat
            try:
                _write_json_atomic(directory / _META, meta)
            except OSError:
                pass  # a read-only cache re-hashes on the next hit instead
        return None

    def providers(self) -> list[str]:
        """The execution providers of the installed onnxruntime (``target="auto"`` picks from them),
        remembered per installation: a hit in a fresh process reads them instead of importing it."""
        spec = importlib.util.find_spec("onnxruntime")
        where = spec.origin if spec is not None and spec.origin else "?"
        installed = f"{where}|{os.stat(where).st_mtime_ns if where != '?' else 0}|{installed_ort_text()}"
        memo_path = self.directory / _PROVIDERS
        memo = _read_json(memo_path) or {}
        if installed not in memo:
            import onnxruntime  # deferred: a new installation is asked once

            memo = {installed: onnxruntime.get_available_providers()}
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                _write_json_atomic(memo_path, memo)
            except (OSError, OnnxfitError):
                pass  # a read-only cache asks onnxruntime every time
        return list(memo[installed])

    def touch(self, key: str) -> None:
        try:
            (self.entries_dir / key / _LAST_USED).touch()
        except OSError:
            pass  # a read-only cache still serves hits

    def build(self, key: str, builder) -> dict:
        """Build an entry with ``builder(tmp_dir) -> meta`` under the key's lock; return its meta."""
        self.ensure()
        with FileLock(str(self.directory / "locks" / f"{key}.lock")):
            meta = self.lookup(key)
            if meta is not None:
                return meta | {"_hit": True}
            tmp_dir = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=self.directory / "tmp"))
            try:
                meta = builder(tmp_dir)
                # The stat stays valid after the rename below: a hit compares it instead of hashing.
                meta["artefact"] = {
                    p.name: {"size": p.stat().st_size, "digest": file_digest(p), "stat": _stat_key(p)}
                    for p in sorted(tmp_dir.iterdir()) if p.name not in (_META, _LAST_USED)
                }
                _write_json_atomic(tmp_dir / _META, meta)
                (tmp_dir / _LAST_USED).touch()
                os.replace(tmp_dir, self.entries_dir / key)
            finally:
                if tmp_dir.exists():
                    shutil.rmtree(tmp_dir, ignore_errors=True)
            return meta | {"_hit": False}


def _stat_key(path: Path) -> list[int]:
    """(size, mtime_ns, inode): what a rewrite or a copy of the file changes (a list, as in JSON)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _external_files(model_path: Path) -> list[str]:
    """External data files of a model, relative to its directory, without reading weight bytes.

    The lazy skeleton turns every main-graph weight into a reference (absolute path, offset):
    those pointing at a file other than the model itself are its external data.
    """
    from onnxfit import lazy_io  # deferred: onnx, read on a digest miss only
    from onnxfit.model import external_data_files, load_model

    skeleton = load_model(model_path, lazy_weights=True)
    source, base = model_path.resolve(), model_path.parent.resolve()
    files = dict.fromkeys(name for name in external_data_files(skeleton) if not os.path.isabs(name))
    for tensor in lazy_io.lazy_tensors(skeleton):
        location = Path(lazy_io.lazy_ref(tensor)[0])
        if location != source:
            files[os.path.relpath(location, base)] = None
    return list(files)


def file_digest_of_strings(parts: list[str]) -> str:
    return xxhash.xxh3_128("|".join(parts).encode()).hexdigest()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def array_digest(value) -> str:
    """Digest of a numpy array's bytes (a fixed input in the cache key)."""
    import numpy as np  # deferred: only fixed inputs are arrays

    return xxhash.xxh3_128_hexdigest(np.ascontiguousarray(value).tobytes())


def _write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True))
