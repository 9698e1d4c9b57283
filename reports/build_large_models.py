"""Build the real-model-sized samples the benchmarks need, into reports/_work/ (gitignored).

    .venv/bin/python reports/build_large_models.py            # build what is missing
    .venv/bin/python reports/build_large_models.py --force    # rebuild both

- ``inswapper_big.onnx``: ``build_inswapper_like(width=256)``, about 552 MB, the size of InsightFace's
  ``inswapper_128.onnx`` (554 MB); 16 reflect Pads.
- ``gfpgan_big.onnx``: ``build_gfpgan_like(width=128, size=512)``, about 341 MB at 512x512, the
  size of GFPGAN v1.4; 10 Splits, 6 scalar Gathers.

Each is built in its own subprocess (the torch export peaks at 3-5 GB; the memory goes back to
the OS when the child exits) and saved atomically with ``onnxfit.model.save_model``. A file that
already exists is reused: the builds are seeded and deterministic, so a rebuild gives the same graph.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work"

MODELS = {
    "inswapper_big.onnx": "build_inswapper_like(width=256)",
    "gfpgan_big.onnx": "build_gfpgan_like(width=128, size=512)",
}


def _child_code(call: str, out: Path) -> str:
    return (
        "from onnxfit.exporters.samples import build_inswapper_like, build_gfpgan_like\n"
        "from onnxfit.model import save_model\n"
        f"save_model({call}, {str(out)!r})\n"
    )


def build(name: str, force: bool = False, quiet: bool = False) -> Path:
    """Path of the large model ``name`` in reports/_work/, built in a subprocess if missing."""
    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / name
    if out.is_file() and out.stat().st_size > 0 and not force:
        return out
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _child_code(MODELS[name], out)], check=True)
    if not quiet:
        print(f"built {out} ({out.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s")
    return out


def build_all(force: bool = False, quiet: bool = False) -> dict[str, Path]:
    return {name: build(name, force, quiet) for name in MODELS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = parser.parse_args(argv)
    for name, path in build_all(args.force).items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
