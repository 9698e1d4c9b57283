"""`onnxfit cache list|info|verify|clear|prune|path`: the per-machine cache of rewritten models."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from onnxfit.cli.common import app, console, handle_errors, print_json
from onnxfit.cli.options import CacheDir, Json
from onnxfit.errors import OnnxfitError

cache_app = typer.Typer(help="The per-machine cache used by onnxfit.prepare() and optimize --cache.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")



def _entry_dict(entry) -> dict:
    key = entry.meta.get("key", {})
    return {"key": entry.key, "source": entry.meta.get("source"), "target": key.get("target"),
            "passes": key.get("passes"), "onnxruntime": key.get("onnxruntime"), "input_shapes": key.get("input_shapes"),
            "unchanged": entry.meta.get("unchanged", False), "size": entry.size,
            "created": entry.meta.get("created"), "last_used": entry.last_used, "path": str(entry.directory)}


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


@cache_app.command("list")
@handle_errors
def list_command(cache_dir: CacheDir = None, as_json: Json = False) -> None:
    """List cache entries, least recently used first."""
    entries = sorted(_cache(cache_dir).entries(), key=lambda e: e.last_used)
    if as_json:
        print_json([_entry_dict(e) for e in entries])
        return
    table = Table(title=f"{len(entries)} entries in {_cache(cache_dir).directory}", title_justify="left")
    for column in ("key", "source", "target", "size", "last used"):
        table.add_column(column)
    for e in entries:
        d = _entry_dict(e)
        table.add_row(e.key[:12], d["source"] or "-", d["target"] or "-",
                      "unchanged" if d["unchanged"] else _human(e.size), _when(e.last_used))
    console.print(table)


@cache_app.command("info")
@handle_errors
def info_command(
    key: str | None = typer.Argument(None, help="An entry key (or its first characters)."),
    cache_dir: CacheDir = None,
    as_json: Json = False,
) -> None:
    """Cache location and size, or the full metadata of one entry."""
    cache = _cache(cache_dir)
    entries = cache.entries()
    if key is None:
        doc = {"path": str(cache.directory), "entries": len(entries), "size": sum(e.size for e in entries)}
        if as_json:
            print_json(doc)
        else:
            console.print(f"{doc['path']}: {doc['entries']} entries, {_human(doc['size'])}")
        return
    matches = [e for e in entries if e.key.startswith(key)]
    if len(matches) != 1:
        raise OnnxfitError(f"{'no' if not matches else 'several'} cache entries match '{key}'; see `onnxfit cache list`")
    doc = _entry_dict(matches[0]) | {"meta": matches[0].meta}
    print_json(doc) if as_json else console.print_json(data=doc)


@cache_app.command("verify")
@handle_errors
def verify_command(cache_dir: CacheDir = None, as_json: Json = False) -> None:
    """Re-hash every entry; remove the damaged ones. Exit 1 if any was damaged.

    A hit only re-hashes a file whose size, mtime or inode changed: this is the full check.
    """
    checked, damaged = _cache(cache_dir).verify()
    if as_json:
        print_json({"checked": checked, "removed": [d.__dict__ for d in damaged]})
    else:
        for d in damaged:
            console.print(f"removed {d.key[:12]} ({d.source or 'unknown source'}): {d.reason}", markup=False)
        console.print(f"checked {checked} entries: {len(damaged)} damaged")
    if damaged:
        raise typer.Exit(1)


@cache_app.command("clear")
@handle_errors
def clear_command(cache_dir: CacheDir = None) -> None:
    """Remove every entry."""
    count = _cache(cache_dir).clear()
    console.print(f"removed {count} entries")


@cache_app.command("prune")
@handle_errors
def prune_command(
    max_size: str = typer.Option(..., "--max-size", help="Keep at most this much, e.g. 2GB; LRU entries go first."),
    cache_dir: CacheDir = None,
    as_json: Json = False,
) -> None:
    """Evict least-recently-used entries until the cache fits in --max-size."""
    cache = _cache(cache_dir)
    from onnxfit.app.cache import parse_size

    evicted = cache.prune(parse_size(max_size))
    if as_json:
        print_json({"evicted": [e.key for e in evicted], "size": cache.total_size()})
    else:
        console.print(f"evicted {len(evicted)} entries; cache now {_human(cache.total_size())}")


@cache_app.command("path")
@handle_errors
def path_command(cache_dir: CacheDir = None) -> None:
    """Print the cache directory."""
    print(_cache(cache_dir).directory)


def _cache(directory: Path | None):
    from onnxfit.app.cache import Cache  # a verb imports what it runs when it runs: --help stays fast

    return Cache(directory)
