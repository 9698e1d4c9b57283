"""BENCHMARKS.md from benchmarks.json: the headline table, the machine, then each section's part."""

from __future__ import annotations

from pathlib import Path

from . import batch, cache, inference, optimize, verify
from .harness import package_changed, table

# Figures measured on the GPU machine (reports/cuda_gpu.py, reports/sessions_gpu.py), not by this
# run: kept in a file of their own so that re-rendering does not drop them.
GPU_SECTION = Path(__file__).with_name("gpu_section.md")

# name -> module with TITLE, run(ctx), render(sec), headline(sec); the order of the document and of a run
SECTIONS = {"optimize": optimize, "cache": cache, "inference": inference, "batch": batch, "verify": verify}


def headline(sections: dict) -> list[list[str]]:
    """Each measured section's goal rows, in section order."""
    return [row for name, module in SECTIONS.items() if sections.get(name) for row in module.headline(sections[name])]


def render_md(doc: dict) -> str:
    machine = doc["machine"]
    sections = doc["sections"]
    v = machine["versions"]
    out = ["# onnxfit benchmarks", "",
           "Written by `reports/bench.py`; do not edit by hand. Reproduce with", "",
           "    .venv/bin/python reports/bench.py", "",
           f"Last run: {doc['finished_at']} ({doc['duration_s'] / 60:.1f} min, sections: {', '.join(doc['ran'])}"
           f"{', quick' if doc['quick'] else ''}).", ""]
    out += ["## Headline", "",
            "Ratios are between commands measured in the same run, interleaved round by round; "
            "times are medians of repeats. PASS/MISS is against the goal in the row.", "",
            table(["what", "measured", "goal"], headline(sections)), ""]
    out += ["## Machine", "",
            f"- CPU: {machine.get('cpu')}, {machine.get('cores')} logical cores; RAM {machine.get('ram_gb')} GB",
            f"- OS: {machine.get('distro', '')} ({machine.get('os')}); Python {machine.get('python')}",
            f"- onnxfit {v.get('onnxfit')}, onnx {v.get('onnx')}, onnxruntime {v.get('onnxruntime')}, "
            f"torch {v.get('torch')}, numpy {v.get('numpy')}, onnx-graphsurgeon {v.get('onnx_graphsurgeon')}; "
            f"peers: onnxsim {v.get('onnxsim')}, onnxslim {v.get('onnxslim')}"]
    ovv = machine.get("openvino_venv")
    if ovv and "onnxruntime" in ovv:
        out.append(f"- `.venv-openvino`: onnxruntime {ovv['onnxruntime']} (providers: {', '.join(ovv['providers'])}), "
                   f"onnx {ovv['onnx']}")
    else:
        out.append(f"- `.venv-openvino`: {'missing' if ovv is None else ovv.get('error')}")
    load = machine.get("load_avg_at_start")
    if load:
        out.append(f"- load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}. "
                   "The machine was shared with other work: absolute times are noisy; ratios of interleaved "
                   "runs are what to compare.")
    code, code_end = machine.get("code"), machine.get("code_at_end")
    if code:
        text = f"- code measured: commit {code['commit']}" + (
            " with uncommitted changes in onnxfit/" if code["onnxfit_modified"] else "")
        changed = package_changed(code, code_end)
        if changed:
            text += (f"; WARNING: onnxfit/ changed during the run (at the end: commit {code_end['commit']}"
                     f"{', onnxfit/ modified' if code_end['onnxfit_modified'] else ''}), rerun before trusting it")
        elif code_end and code_end.get("commit") != code.get("commit"):
            text += (f" (HEAD moved to {code_end['commit']} during the run, with no change to onnxfit/)"
                     if changed is False else f" (HEAD moved to {code_end['commit']} during the run)")
        out.append(text)
    out.append("")
    for name in SECTIONS:
        sec = sections.get(name)
        out.append(f"## {SECTIONS[name].TITLE}")
        out.append("")
        if sec is None:
            out += ["Not measured in this run (`--sections` did not include it, and no earlier result exists).", ""]
            continue
        if sec.get("measured_at") and sec["measured_at"] != doc["started_at"]:
            out += [f"_Measured in an earlier run, {sec['measured_at']}._", ""]
        if "error" in sec and len(sec) <= 4:
            out += [f"FAILED: {sec['error']}", ""]
            continue
        out += SECTIONS[name].render(sec)
        out.append("")
    out.append(GPU_SECTION.read_text())
    return "\n".join(out).rstrip() + "\n"
