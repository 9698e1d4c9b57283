"""simplify benchmark: writes reports/SIMPLIFY.md and reports/simplify.json.

    .venv/bin/python reports/bench_simplify.py                 # ~15 min on 2 cores
    .venv/bin/python reports/bench_simplify.py --repeats 1 --no-large
    .venv/bin/python reports/bench_simplify.py --render-only   # rewrite SIMPLIFY.md from the JSON

Per model, four commands, each in its own subprocess, interleaved round by round:
- ``onnxfit optimize M -o OUT --passes simplify --target cpu``: the simplify pass alone;
- ``onnxfit optimize M -o OUT --simplify --target coreml``: simplify, then the coreml passes;
- ``onnxsim M OUT``: onnxsim's own command line;
- ``onnxsim.simplify`` from Python: ``onnx.load``, ``simplify``, ``onnx.save``, as a user script does.

Wall time is from spawn to exit (median of the repeats); peak RSS is the child's ``ru_maxrss``
(os.wait4), the largest of the repeats. Each result is run against the original on ONNX Runtime
CPU (graph optimizations off) on one random input per model: the largest absolute difference of
any output, and its node count. Models: the inswapper-sized (552 MB) and GFPGAN-sized (341 MB)
generators of reports/build_large_models.py (built once into reports/_work/), and zoo models.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx

REPORTS = Path(__file__).resolve().parent
ROOT = REPORTS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(REPORTS))

from bench import PY, machine_info, median, onnxfit_cmd, rm, run_child, tool_cmd, warm_page_cache  # noqa: E402
from build_large_models import build  # noqa: E402

from onnxfit.graphs import iter_graphs  # noqa: E402
from onnxfit.lazy_io import load_skeleton  # noqa: E402
from tests.conftest import random_feeds, run_ort  # noqa: E402

JSON_PATH = REPORTS / "simplify.json"
MD_PATH = REPORTS / "SIMPLIFY.md"
LARGE = ["inswapper_big.onnx", "gfpgan_big.onnx"]
ZOO = ["yolov8n_nudenet", "ppocr_v4_det", "picodet_layout_cdla", "centerface"]
COMMANDS = ["onnxfit --passes simplify", "onnxfit --simplify --target coreml", "onnxsim CLI", "onnxsim Python API"]
API_CODE = ("import sys, onnx, onnxsim\n"
            "model, ok = onnxsim.simplify(onnx.load(sys.argv[1]))\n"
            "assert ok\n"
            "onnx.save(model, sys.argv[2])\n")


def command(name: str, model: Path, out: Path) -> list[str]:
    if name == "onnxfit --passes simplify":
        return onnxfit_cmd("optimize", model, "-o", out, "--passes", "simplify", "--target", "cpu", "--no-partitions")
    if name == "onnxfit --simplify --target coreml":
        return onnxfit_cmd("optimize", model, "-o", out, "--simplify", "--target", "coreml", "--no-partitions")
    if name == "onnxsim CLI":
        return tool_cmd("onnxsim", model, out)
    return [PY, "-c", API_CODE, str(model), str(out)]


def node_count(path: Path) -> int:
    # Without the weight bytes (inline in the large models): this process must stay small, see below.
    model = load_skeleton(path)
    return sum(len(g.node) for g in iter_graphs(model.graph))


def max_abs_diff(expected: list[np.ndarray], path: Path, feeds: dict) -> float:
    actual = run_ort(path, feeds)
    return max((float(np.max(np.abs(e.astype(np.float64) - a))) if e.size else 0.0) for e, a in zip(expected, actual))


def feeds_of(label: str, model: onnx.ModelProto) -> dict:
    """The zoo test's inputs for zoo models (real sizes for symbolic dims), random ones otherwise."""
    if label in ZOO:
        from tests.zoo.manifest import by_name
        from tests.zoo.test_zoo import feeds_for

        return feeds_for(by_name(label), model)
    return random_feeds(model, seed=0)


def bench_model(label: str, path: Path, repeats: int, work: Path) -> dict:
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(f"{path.name}.*"))
    print(f"{label}: {size / 1e6:.0f} MB", flush=True)
    runs: dict[str, list] = {name: [] for name in COMMANDS}
    outs = {name: work / f"{label}.{i}.onnx" for i, name in enumerate(COMMANDS)}
    for _ in range(repeats):
        for name in COMMANDS:
            rm(outs[name])
            warm_page_cache(path)
            run = run_child(command(name, path, outs[name]), timeout=1800)
            runs[name].append(run)
            state = f"{run.wall_s:.1f} s, {run.peak_rss / 1e6:.0f} MB" if run.ok else run.error_line()
            print(f"  {name}: {state}", flush=True)
    # Parity in a child: ONNX Runtime sessions on a 552 MB model would grow this process, and on
    # Linux a child's ru_maxrss starts from its parent's size at fork, inflating every later figure
    # (the same reason node_count reads no weights).
    written = [name for name in COMMANDS if outs[name].exists()]
    check = run_child([PY, __file__, "--parity", label, path, *(outs[n] for n in written)], timeout=1800)
    if not check.ok:
        raise SystemExit(f"parity check failed: {check.error_line()}")
    diffs = dict(zip(written, json.loads(check.stdout.strip().splitlines()[-1])))
    results = {}
    for name in COMMANDS:
        done = [r for r in runs[name] if r.ok]
        entry = {"ok": len(done) == len(runs[name]), "wall_s": median([r.wall_s for r in done]),
                 "walls_s": [round(r.wall_s, 2) for r in runs[name]],
                 "peak_rss_mb": max((r.peak_rss for r in done), default=0) / 1e6 or None}
        if not entry["ok"]:
            entry["error"] = next(r.error_line() for r in runs[name] if not r.ok)
        elif outs[name].exists():
            entry["nodes_after"] = node_count(outs[name])
            entry["max_abs_diff"] = diffs[name]
        results[name] = entry
        rm(outs[name])
    return {"model": label, "size_mb": size / 1e6, "nodes_before": node_count(path), "commands": results}


def render(doc: dict) -> str:
    lines = ["# simplify: `onnxfit optimize --simplify` against onnxsim", "",
             "Written by `reports/bench_simplify.py`; do not edit by hand. Reproduce with", "",
             "    .venv/bin/python reports/bench_simplify.py", "",
             f"Last run: {doc['when']} ({doc['minutes']:.1f} min, {doc['repeats']} repeats per command, "
             f"interleaved). Machine: {doc['machine'].get('cpu')}, {doc['machine'].get('cores')} cores, "
             f"{doc['machine'].get('ram_gb')} GB; onnxsim {doc['machine']['versions'].get('onnxsim')}, "
             f"onnx {doc['machine']['versions'].get('onnx')}, onnxruntime {doc['machine']['versions'].get('onnxruntime')}.",
             "",
             "Each command runs in its own process; time is wall time from spawn to exit (median), peak RSS "
             "the child's `ru_maxrss` (largest of the repeats), `x size` peak RSS over the model's size. "
             "`max |diff|`: the largest absolute difference of any output from the original's on ONNX Runtime "
             "CPU, one random input. Times on a shared 2-core machine: compare within a row group.", "",
             "| model | command | time | vs onnxsim CLI | peak RSS | x size | nodes | max \\|diff\\| |",
             "|---|---|---|---|---|---|---|---|"]
    for m in doc["models"]:
        cli = m["commands"]["onnxsim CLI"].get("wall_s")
        for name in COMMANDS:
            c = m["commands"][name]
            if not c["ok"]:
                lines.append(f"| {m['model']} ({m['size_mb']:.0f} MB) | {name} | failed: {c['error']} | | | | | |")
                continue
            ratio = f"{c['wall_s'] / cli:.2f}x" if cli else "-"
            diff = f"{c['max_abs_diff']:.1e}" if c.get("max_abs_diff") is not None else "-"
            lines.append(f"| {m['model']} ({m['size_mb']:.0f} MB) | `{name}` | {c['wall_s']:.1f} s | {ratio} | "
                         f"{c['peak_rss_mb']:.0f} MB | {c['peak_rss_mb'] / m['size_mb']:.1f}x | "
                         f"{m['nodes_before']} -> {c.get('nodes_after', '-')} | {diff} |")
    lines += ["", "Notes:", ""]
    lines += [f"- {note}" for note in NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "`import onnxsim` takes about 2 s on its own (the package imports torch when it is installed): "
    "that is most of the time on the small zoo models, for onnxfit and onnxsim alike.",
    "onnxfit hands onnxsim an in-memory ModelProto with the weights read in; weights that come back "
    "unchanged point at the source file again and are streamed to the output, so the peak is "
    "onnxsim's own (serialized copy plus its C++ working copy), not the save.",
    "`--simplify --target coreml` also runs the coreml passes after onnxsim (reflect Pads, Splits, "
    "scalar Gathers, ...), so its node count can differ from onnxsim's.",
    "On the large models onnxfit takes about half the time of onnxsim's command line (which also "
    "prints its analysis) and as long as onnxsim's Python API, at the same peak RSS; on the small zoo "
    "models it costs 0.5-1.5 s more than onnxsim: its own imports (onnxruntime, graph-surgeon), the "
    "re-import of onnxsim's result for the passes after it, and the onnx checker on the result.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-large", action="store_true", help="zoo models only")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--parity", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # LABEL MODEL OUT...
    args = parser.parse_args(argv)
    if args.parity:
        label, source, *outputs = args.parity
        feeds = feeds_of(label, onnx.load(source, load_external_data=False))
        expected = run_ort(source, feeds)
        print(json.dumps([max_abs_diff(expected, Path(out), feeds) for out in outputs]))
        return 0
    if args.render_only:
        MD_PATH.write_text(render(json.loads(JSON_PATH.read_text())))
        return 0
    start = time.perf_counter()
    from tests.zoo.fetch import fetch
    from tests.zoo.manifest import by_name

    models = [] if args.no_large else [(name.removesuffix(".onnx"), build(name)) for name in LARGE]
    zoo = fetch([by_name(n) for n in ZOO])
    models += [(name, Path(zoo[name])) for name in ZOO]
    doc = {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "repeats": args.repeats,
           "machine": machine_info()}
    with tempfile.TemporaryDirectory(dir=REPORTS / "_work" if (REPORTS / "_work").is_dir() else None) as tmp:
        doc["models"] = [bench_model(label, path, args.repeats, Path(tmp)) for label, path in models]
    doc["minutes"] = (time.perf_counter() - start) / 60
    JSON_PATH.write_text(json.dumps(doc, indent=2) + "\n")
    MD_PATH.write_text(render(doc))
    print(f"wrote {MD_PATH} and {JSON_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
