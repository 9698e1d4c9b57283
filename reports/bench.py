"""onnxfit benchmarks: writes reports/BENCHMARKS.md and reports/benchmarks.json.

    .venv/bin/python reports/bench.py                      # everything (~10 min on 2 cores)
    .venv/bin/python reports/bench.py --quick              # small repeats, no large-model sections
    .venv/bin/python reports/bench.py --sections cache,batch
    .venv/bin/python reports/bench.py --render-only        # rewrite BENCHMARKS.md from benchmarks.json

Sections (names or numbers for --sections):
  1 optimize   wall time and peak RSS of `onnxfit optimize --target coreml` on the inswapper-sized
               (552 MB) and GFPGAN-sized (341 MB) models, against the floor (onnx.load + onnx.save),
               onnxsim and onnxslim on the same model
  2 cache      prepare_entry miss vs hit on the 552 MB model (same process), and a hit from a fresh
               process (which hashes the artefact in full once)
  3 inference  ONNX Runtime CPU latency of the weights/ samples before/after optimize (coreml and cpu
               targets); OpenVINO EP partitions and latency before/after (in .venv-openvino)
  4 batch      the SCRFD-like sample after --dynamic-batch: frames/s at batch 1, 4, 16 and the
               per-frame equality check at each size
  5 verify     wall time of `onnxfit verify --batch 16`

Method: every measured command runs in its own subprocess; peak RSS is that child's ru_maxrss from
os.wait4. Time figures are medians of repeats, and the figures to judge by are ratios between
commands measured in the same run, interleaved round by round (so drift and load on a shared
machine hit both sides alike). Absolute times are given for context only.

A partial run (--sections) replaces those sections in the JSON and keeps the others, each section
saying when it was measured. --quick writes into reports/_work/quick/ (not the committed results)
unless --out-dir is given. Large models are built once into reports/_work/ (gitignored) by
reports/build_large_models.py and reused.

Layout: this file parses the command line and writes the two files; reports/benchmarks/ holds the
harness, one module per section (measure, render, headline rows), the document renderer and, in
children/, the scripts a section runs in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from onnxfit.text import json_default

from benchmarks.document import SECTIONS, headline, render_md
from benchmarks.harness import (  # noqa: F401 (other report scripts import these from here)
    PY,
    REPORTS,
    WORK,
    Ctx,
    code_state,
    machine_info,
    median,
    onnxfit_cmd,
    rm,
    run_child,
    tool_cmd,
    warm_page_cache,
)


def parse_sections(text: str | None, quick: bool) -> list[str]:
    if not text:
        return [s for s in SECTIONS if not (quick and s in ("optimize", "cache"))]
    chosen = []
    for part in text.split(","):
        part = part.strip().lower()
        if part.isdigit() and 1 <= int(part) <= len(SECTIONS):
            part = list(SECTIONS)[int(part) - 1]
        if part not in SECTIONS:
            raise SystemExit(f"unknown section '{part}'; choose from {', '.join(SECTIONS)} or 1-{len(SECTIONS)}")
        if part not in chosen:
            chosen.append(part)
    return [s for s in SECTIONS if s in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="onnxfit benchmarks -> reports/BENCHMARKS.md + benchmarks.json")
    parser.add_argument("--quick", action="store_true",
                        help="small repeats; skip the large-model sections (optimize, cache) unless --sections "
                             "names them; writes to reports/_work/quick/ unless --out-dir is given")
    parser.add_argument("--sections", help=f"comma-separated: {','.join(SECTIONS)} (or 1-{len(SECTIONS)})")
    parser.add_argument("--threads", type=int, default=1,
                        help="ORT intra_op_num_threads (default 1: on a small shared machine a second ORT thread "
                             "competes with other work and its spin-waits make latency bimodal)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measured command (default 5; quick 1)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where BENCHMARKS.md and benchmarks.json go")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite BENCHMARKS.md from the existing benchmarks.json")
    args = parser.parse_args(argv)
    if args.render_only:
        out_dir = args.out_dir or (WORK / "quick" if args.quick else REPORTS)
        doc = json.loads((out_dir / "benchmarks.json").read_text())
        (out_dir / "BENCHMARKS.md").write_text(render_md(doc))
        print(f"rendered {out_dir / 'BENCHMARKS.md'} from {out_dir / 'benchmarks.json'}")
        return 0

    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    sections = parse_sections(args.sections, args.quick)
    out_dir = args.out_dir or (WORK / "quick" if args.quick else REPORTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "benchmarks.json", out_dir / "BENCHMARKS.md"
    WORK.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    previous = {}
    if json_path.exists():
        try:
            previous = json.loads(json_path.read_text()).get("sections", {})
        except (OSError, ValueError):
            previous = {}
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[section]}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=console) as progress:
        task = progress.add_task("machine info", total=len(sections), section="setup")
        machine = machine_info()
        ctx = Ctx(quick=args.quick, threads=args.threads, progress=progress, task=task,
                  repeats=args.repeats or (1 if args.quick else 5))
        results = {}
        for name in sections:
            progress.update(task, section=SECTIONS[name].TITLE)
            s0 = time.perf_counter()
            try:
                results[name] = SECTIONS[name].run(ctx)
            except Exception as exc:  # a broken section is reported, the others still run
                import traceback

                progress.console.print(traceback.format_exc())
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["measured_at"] = started
            results[name]["duration_s"] = round(time.perf_counter() - s0, 1)
            progress.advance(task)
    merged = {**previous, **results}
    doc = {"started_at": started, "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "duration_s": round(time.perf_counter() - t0, 1), "quick": args.quick, "ran": sections,
           "threads": args.threads, "machine": machine,
           "command": "python reports/bench.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip(),
           "sections": {k: merged[k] for k in SECTIONS if k in merged}}
    doc["machine"]["load_avg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    doc["machine"]["code_at_end"] = code_state()
    json_path.write_text(json.dumps(doc, indent=2, default=json_default) + "\n")
    md_path.write_text(render_md(doc))
    console.print(f"wrote {md_path} and {json_path} in {doc['duration_s'] / 60:.1f} min")
    for row in headline(doc["sections"]):
        console.print(f"  [{'green' if row[2] == 'PASS' else 'red' if row[2] == 'MISS' else 'white'}]{row[2]:>4}"
                      f"[/] {row[0]}: {row[1]}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
