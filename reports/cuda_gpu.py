"""CUDA EP figures, measured on a machine whose onnxruntime has the CUDA EP.

    python reports/cuda_gpu.py pack                 # any machine: zoo models for the run -> build/gpu-zoo/
    python reports/cuda_gpu.py kernels --provider CPUExecutionProvider > onnxfit/targets/cuda_kernels.py
    python reports/cuda_gpu.py measure --models build/gpu-zoo           # writes reports/CUDA.md, reports/cuda.json
    python reports/cuda_gpu.py render                                   # CUDA.md again from cuda.json

`measure` runs, in one process:
1. agreement of the `cuda` estimate (onnxfit/targets/cuda.py, no GPU needed) with the real CUDA
   placement, node by node, on every zoo model and sample as published, after `optimize --target
   cuda`, and after `optimize --target cuda --input-shape` where the zoo pins shapes;
2. frames/s at batch 16 vs batch 1 of detectors exported at batch 1 and repaired with
   `optimize --target cuda --dynamic-batch` (the ratio is what counts: one GPU, one run);
3. real CUDA partitions before/after `optimize --target cuda`, with and without `--input-shape`;
4. `verify` with the CUDA EP as a runtime: parity against the CPU reference (largest errors, with
   TF32 on as ORT's default and off), contamination at batch 16 on CUDA.

`pack` copies the models: the ones whose outputs `verify` compares keep their weights; for the
rest, placement and speed do not depend on weight values, so initializers over 1024 elements are
zeroed and the lot is compressed (build/gpu-zoo/zeroed.tgz), small enough to travel to the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

CUDA_EP = "CUDAExecutionProvider"
REAL_WEIGHTS = ("centerface", "yolov8n_nudenet")  # carried with their weights
SAMPLES = ("scrfd_like", "gfpgan_like", "inswapper_like", "facex_nano")
# Detectors exported at a fixed batch: frames/s at batch 16 vs 1 after --dynamic-batch.
DETECTORS = ("scrfd_like", "centerface", "yolox_ddddocr_det", "picodet_layout_cdla")
# verify runs these with their real weights, repaired to a dynamic batch (yolov8n with its zoo input shape).
VERIFIED = ("scrfd_like", "gfpgan_like", "yolov8n_nudenet")
FRAMES_BATCHES = (1, 16)


# ------------------------------------------------------------------------------------- pack


def pack(dest: Path) -> None:
    from onnxfit.graphs import iter_graphs
    from tests.zoo.fetch import fetch
    from tests.zoo.manifest import MODELS

    dest.mkdir(parents=True, exist_ok=True)
    onnx_models = [m for m in MODELS if m.kind == "onnx"]
    paths = fetch(onnx_models)
    with tarfile.open(dest / "zeroed.tgz", "w:gz", compresslevel=9) as tar:
        for model in onnx_models:
            if model.name in REAL_WEIGHTS:
                shutil.copyfile(paths[model.name], dest / f"{model.name}.onnx")
                continue
            proto = onnx.load(str(paths[model.name]))
            for graph in iter_graphs(proto.graph):
                weights = [*graph.initializer, *(a.t for n in graph.node if n.op_type == "Constant"
                                                 for a in n.attribute if a.name == "value")]
                for tensor in weights:
                    if int(np.prod(tensor.dims, dtype=np.int64)) > 1024:
                        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
                        tensor.CopyFrom(numpy_helper.from_array(np.zeros(tuple(tensor.dims), dtype), tensor.name))
            data = proto.SerializeToString()
            info = tarfile.TarInfo(f"{model.name}.onnx")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    print(f"packed {len(onnx_models)} zoo models into {dest}")


def unpack(models: Path) -> None:
    archive = models / "zeroed.tgz"
    if archive.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(models, filter="data")


# ---------------------------------------------------------------------------------- kernels


def kernel_module(provider: str = "CPUExecutionProvider") -> str:
    """The kernel registry of the installed onnxruntime for `provider`, as cuda_kernels.py's text."""
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    from onnxfit.versions import format_version, parse_version

    # The provider's library registers its kernels when a session first loads it.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    tiny = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x],
                                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
                             ir_version=8, opset_imports=[helper.make_opsetid("", 17)])
    ort.InferenceSession(tiny.SerializeToString(), providers=[provider])
    merged: dict[tuple, dict[str, set[str]]] = {}
    for kernel in C.get_all_opkernel_def():
        if kernel.provider != provider:
            continue
        domain = "" if kernel.domain in ("", "ai.onnx") else kernel.domain
        key = (domain, kernel.op_name, *kernel.version_range)
        entry = merged.setdefault(key, {})
        for name, types in kernel.type_constraints.items():
            entry.setdefault(name, set()).update(t[len("tensor("):-1] for t in types if t.startswith("tensor("))
    lines = []
    for (domain, op, start, end), constraints in sorted(merged.items()):
        versions = f"{start}" if end >= 2**31 - 1 else f"{start}-{end}"
        types = " ".join(f"{name}={','.join(sorted(t))}" for name, t in sorted(constraints.items()))
        lines.append(f"{domain + ':' if domain else ''}{op} {versions} {types}".rstrip())
    version = format_version(parse_version(ort.__version__))
    return (
        f'"""{provider} kernel registry of onnxruntime {ort.__version__}, as data for targets/cuda.py.\n\n'
        f"Generated with `python reports/cuda_gpu.py kernels --provider {provider}`; do not edit.\n"
        f"One kernel per line: [domain:]Op start[-end] Constraint=dtype,... (no end: and later).\n"
        f'"""\n\nORT_VERSION = "{version}"\n\nKERNELS = """\n' + "\n".join(lines) + '\n"""\n'
    )


# ---------------------------------------------------------------------------------- measure


def _named(path: Path, out: Path) -> Path:
    """A copy of the model whose nameless nodes carry their report label as name.

    ORT logs a nameless node as "Relu ()"; with names, the real placement maps to nodes exactly.
    """
    from onnxfit.errors import node_label

    proto = onnx.load(str(path))
    for node in proto.graph.node:
        if not node.name:
            node.name = node_label(node)
    onnx.save(proto, str(out))
    return out


def placement(path: Path, version) -> dict:
    """Real and estimated CUDA placement of one model, node by node (top-level nodes)."""
    from onnxfit.targets.partitions import estimate_partitions, real_partitions

    real = real_partitions(path, "cuda", CUDA_EP)
    estimate = estimate_partitions(path, "cuda", version)
    real_cpu = {u.name for u in real.unsupported}
    estimated_cpu = {u.name: u.reason for u in estimate.unsupported}
    from onnxfit.targets.partitions import prepare_graph
    from onnxfit.errors import node_label

    labels = [node_label(n) for n in prepare_graph(path).nodes]
    wrong = [
        {"node": label, "real": "CPU" if label in real_cpu else "CUDA",
         "estimated": "CPU" if label in estimated_cpu else "CUDA", "reason": estimated_cpu.get(label, "")}
        for label in labels
        if (label in real_cpu) != (label in estimated_cpu)
    ]
    return {
        "nodes": len(labels),
        "agree": len(labels) - len(wrong),
        "real": {"partitions": real.partitions, "on_cuda": real.nodes_on_ep, "cpu_nodes": sorted(real_cpu)},
        "estimated": {"partitions": estimate.partitions, "on_cuda": estimate.nodes_on_ep},
        "disagreements": wrong,
    }


def frames_per_second(path: Path, batch: int, seconds: float = 2.0) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=[CUDA_EP, "CPUExecutionProvider"])
    feeds = {}
    rng = np.random.default_rng(0)
    for i in session.get_inputs():
        shape = [batch if not isinstance(d, int) or d <= 0 else d for d in i.shape]
        shape[0] = batch
        feeds[i.name] = rng.random(shape, dtype=np.float32)
    for _ in range(5):
        session.run(None, feeds)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feeds)
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def _cuda_contamination(path: Path, runtime) -> dict:
    """The frame test of `verify` run on the CUDA EP itself, at batch 16 (verify runs it on the CPU reference)."""
    from onnxfit.verification.contamination import contamination_check
    from onnxfit.verification.inputs import model_inputs

    proto = onnx.load(str(path))
    specs = model_inputs(proto)
    check = contamination_check(proto, runtime, specs, {}, batch=16)
    return {"name": "contamination on CUDA", "ok": check.ok, "summary": check.summary}


def _verify_summary(report) -> dict:
    document = report.to_dict()
    summary = {"ok": document["ok"], "checks": []}
    for check in document["checks"]:
        entry = {"name": check["name"], "ok": check["ok"], "summary": check["summary"]}
        if check["name"] == "parity":
            entry["comparisons"] = [
                {
                    "label": c["label"],
                    "ok": c["ok"],
                    "max_abs": max((o.get("max_abs") or 0.0) for o in c["outputs"]) if c["outputs"] else None,
                    "max_rel": max((o.get("max_rel") or 0.0) for o in c["outputs"]) if c["outputs"] else None,
                    "atol": c["outputs"][0]["atol"] if c["outputs"] else None,
                    "rtol": c["outputs"][0]["rtol"] if c["outputs"] else None,
                }
                for c in check["details"].get("comparisons", [])
            ]
        summary["checks"].append(entry)
    return summary


def measure(models: Path, out_json: Path, out_md: Path) -> dict:
    import onnxruntime as ort

    from onnxfit.app.optimize import optimize
    from onnxfit.targets.cuda_kernels import ORT_VERSION
    from onnxfit.versions import parse_version
    from onnxfit import verify
    from onnxfit.targets.partitions import real_partitions
    from onnxfit.verification.runtimes import OrtRuntime
    from tests.zoo.manifest import by_name

    if CUDA_EP not in ort.get_available_providers():
        raise SystemExit(f"this onnxruntime ({ort.__version__}) has no {CUDA_EP}")
    save = lambda: out_json.write_text(json.dumps(result, indent=1) + "\n")  # noqa: E731 - partial results survive a timeout
    unpack(models)
    smi = shutil.which("nvidia-smi")
    gpu = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip() if smi else "unknown GPU"
    version = parse_version(ort.__version__)
    result: dict = {
        "onnxruntime": ort.__version__, "gpu": gpu, "python": platform.python_version(),
        "kernel_table": ORT_VERSION, "placement": {}, "frames": {}, "partitions": {}, "verify": {},
    }
    work = Path(tempfile.mkdtemp(prefix="cuda-gpu-"))
    sources = {name: ROOT / "weights" / f"{name}.onnx" for name in SAMPLES}
    sources.update({p.stem: p for p in sorted(models.glob("*.onnx"))})

    def shapes_of(name: str) -> dict:
        try:
            return dict(by_name(name).input_shape)
        except KeyError:
            return {}

    # 1 + 3: placement agreement and partitions before/after optimize
    for name, source in sources.items():
        variants = {"published": source}
        try:
            variants["optimized"] = optimize(source, work / f"{name}.opt.onnx", target="cuda").output
            if shapes_of(name):
                variants["optimized+shape"] = optimize(source, work / f"{name}.shape.onnx", target="cuda",
                                                       input_shapes=shapes_of(name)).output
        except Exception as exc:  # noqa: BLE001 - a model optimize refuses is reported, not fatal
            result["placement"].setdefault(name, {})["optimize_error"] = str(exc).splitlines()[0]
        for variant, path in variants.items():
            named = _named(Path(path), work / f"{name}.{variant}.named.onnx")
            try:
                result["placement"].setdefault(name, {})[variant] = placement(named, version)
            except Exception as exc:  # noqa: BLE001
                result["placement"].setdefault(name, {})[variant] = {"error": str(exc).splitlines()[0]}
            print(name, variant, {k: v for k, v in result["placement"][name][variant].items()
                                  if k in ("nodes", "agree", "real", "estimated", "error")}, flush=True)
        save()
        result["partitions"][name] = {
            variant: {"partitions": p["real"]["partitions"], "on_cuda": p["real"]["on_cuda"], "nodes": p["nodes"]}
            for variant, p in result["placement"][name].items() if isinstance(p, dict) and "real" in p
        }

    # 2: batch 16 vs batch 1 frames/s of detectors repaired with --dynamic-batch
    for name in DETECTORS:
        if name not in sources:
            continue
        try:
            repaired = optimize(sources[name], work / f"{name}.db.onnx", target="cuda", dynamic_batch=True).output
            fps = {str(b): frames_per_second(repaired, b) for b in FRAMES_BATCHES}
            parts = real_partitions(repaired, "cuda", CUDA_EP)
            result["frames"][name] = {
                "fps": fps, "ratio": fps["16"] / fps["1"],
                "partitions": parts.partitions, "on_cuda": parts.nodes_on_ep, "nodes": parts.total_nodes,
            }
        except Exception as exc:  # noqa: BLE001
            result["frames"][name] = {"error": str(exc).splitlines()[0]}
        print("frames", name, result["frames"][name], flush=True)
        save()

    # 4: verify with the CUDA EP as a runtime (models with their real weights, exported at batch 1)
    for name in VERIFIED:
        if name not in sources:
            continue
        entry = {}
        try:
            shapes = shapes_of(name)
            repaired = optimize(sources[name], work / f"{name}.vdb.onnx", target="cuda", dynamic_batch=True,
                                input_shapes={k: (1, *v[1:]) for k, v in shapes.items()} or None).output
            reference = sources[name] if not shapes else optimize(
                sources[name], work / f"{name}.ref.onnx", target="cpu", passes=[], input_shapes=shapes).output
            for tf32 in ("1", "0"):
                cuda = OrtRuntime(repaired, CUDA_EP, name=f"ort-cuda-tf32-{'on' if tf32 == '1' else 'off'}",
                                  provider_options={"use_tf32": tf32})
                report = verify(repaired, reference, batch=16, runtimes=["ort-cpu", cuda])
                entry[f"tf32_{'on' if tf32 == '1' else 'off'}"] = _verify_summary(report)
                entry[f"contamination_cuda_tf32_{'on' if tf32 == '1' else 'off'}"] = _cuda_contamination(repaired, cuda)
        except Exception as exc:  # noqa: BLE001
            entry["error"] = str(exc).splitlines()[0]
        result["verify"][name] = entry
        print("verify", name, json.dumps(entry)[:3000], flush=True)

    out_json.write_text(json.dumps(result, indent=1) + "\n")
    out_md.write_text(render(result))
    return result


# ----------------------------------------------------------------------------------- render


def agreement(result: dict) -> tuple[int, int]:
    agree = total = 0
    for variants in result["placement"].values():
        for p in variants.values():
            if isinstance(p, dict) and "agree" in p:
                agree, total = agree + p["agree"], total + p["nodes"]
    return agree, total


def render(result: dict) -> str:
    agree, total = agreement(result)
    lines = [
        "# CUDA EP: estimate vs real placement, batch throughput, parity",
        "",
        f"Measured by `reports/cuda_gpu.py measure` with onnxruntime-gpu {result['onnxruntime']} on "
        f"{result['gpu']} (one run; ratios are within that run). Zoo models other than "
        f"{', '.join(REAL_WEIGHTS)} ran with zeroed weights (placement and speed do not depend on weight values).",
        "",
        "## Placement: the `cuda` estimate vs the real CUDA EP",
        "",
        f"Nodes placed as estimated: **{agree}/{total} ({100 * agree / max(total, 1):.1f}%)** over every model "
        "and variant below. The estimate runs anywhere (`onnxfit partitions M --target cuda` without a GPU).",
        "",
        "| model | variant | nodes | agree | real partitions | estimated partitions | real on CUDA | estimated on CUDA |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, variants in result["placement"].items():
        for variant, p in variants.items():
            if not isinstance(p, dict) or "agree" not in p:
                lines.append(f"| {name} | {variant} | | | {p if isinstance(p, str) else p.get('error', '')} | | | |")
                continue
            lines.append(
                f"| {name} | {variant} | {p['nodes']} | {p['agree']} | {p['real']['partitions']} | "
                f"{p['estimated']['partitions']} | {p['real']['on_cuda']} | {p['estimated']['on_cuda']} |"
            )
    lines += [
        "",
        "## Real CUDA partitions before and after `optimize --target cuda`",
        "",
        "Models the CUDA EP does not run whole as published (real placement; `+shape` adds the zoo's "
        "`--input-shape`, which lets fold-shapes remove the shape math the CUDA EP leaves to the CPU).",
        "",
        "| model | published | optimized | optimized + `--input-shape` |",
        "|---|---|---|---|",
    ]
    for name, variants in result["partitions"].items():
        if all(v["partitions"] <= 1 for v in variants.values()):
            continue
        cells = [f"{v['partitions']} ({v['on_cuda']}/{v['nodes']} nodes)" if (v := variants.get(k)) else "-"
                 for k in ("published", "optimized", "optimized+shape")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Batch 16 vs batch 1 after `optimize --target cuda --dynamic-batch`",
        "",
        "Detectors exported at a fixed batch, repaired by onnxfit; frames/s with inputs fed from host memory.",
        "",
        "| detector | frames/s batch 1 | frames/s batch 16 | ratio | CUDA partitions | nodes on CUDA |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in result["frames"].items():
        if "error" in f:
            lines.append(f"| {name} | {f['error']} | | | | |")
            continue
        lines.append(f"| {name} | {f['fps']['1']:.0f} | {f['fps']['16']:.0f} | {f['ratio']:.1f}x | "
                     f"{f['partitions']} | {f['on_cuda']}/{f['nodes']} |")
    lines += [
        "", "## `verify` with the CUDA EP as a runtime (batch 16, repaired with `--dynamic-batch`)", "",
        "Parity: the CUDA EP against the CPU reference (`ort-cpu-noopt`) at `verify`'s default fp32 tolerance, "
        "with TF32 on (ORT's default, `use_tf32=1`) and off. Contamination: `verify`'s frame test run on the "
        "CUDA EP itself at batch 16.", "",
        "TF32 (on by default in ORT's CUDA EP) rounds convolution inputs to 10-bit mantissas, and cuDNN picks "
        "other algorithms per batch size: where outputs are large (yolov8n's boxes, in pixels) CUDA then differs "
        "from the CPU, and a frame run alone from its slice of a batch, by more than fp32 tolerances. Verify on "
        "CUDA with `use_tf32=0`, or with tolerances the table shows (e.g. `--atol 0.2 --rtol 0.01`) where TF32 "
        "stays on; a contamination failure on CUDA with TF32 on is this rounding, not frames mixing "
        "(the same model passes with TF32 off).", "",
        "| model | TF32 | CUDA vs CPU: largest abs / rel error | within atol / rtol | contamination on CUDA |",
        "|---|---|---|---|---|",
    ]
    for name, entry in result["verify"].items():
        if "error" in entry:
            lines.append(f"| {name} | | {entry['error']} | | |")
            continue
        for mode in ("on", "off"):
            summary = entry.get(f"tf32_{mode}")
            if summary is None:
                continue
            parity = next(c for c in summary["checks"] if c["name"] == "parity")
            cuda = [c for c in parity.get("comparisons", []) if "cuda" in c["label"]]
            contamination = entry.get(f"contamination_cuda_tf32_{mode}", {})
            for c in cuda:
                lines.append(f"| {name} | {mode} | {c['max_abs']:.2g} / {c['max_rel']:.2g} | "
                             f"{'yes' if c['ok'] else 'no'} ({c['atol']} / {c['rtol']}) | "
                             f"{'ok' if contamination.get('ok') else 'FAIL'}: {contamination.get('summary', '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--dest", type=Path, default=ROOT / "build" / "gpu-zoo")
    k = sub.add_parser("kernels")
    k.add_argument("--provider", default="CPUExecutionProvider",
                   help="onnxruntime-gpu 1.30 crashes listing the CUDA EP's kernels where TensorRT is absent")
    m = sub.add_parser("measure")
    m.add_argument("--models", type=Path, default=ROOT / "build" / "gpu-zoo")
    m.add_argument("--json", type=Path, default=ROOT / "reports" / "cuda.json")
    m.add_argument("--md", type=Path, default=ROOT / "reports" / "CUDA.md")
    r = sub.add_parser("render")
    r.add_argument("--json", type=Path, default=ROOT / "reports" / "cuda.json")
    r.add_argument("--md", type=Path, default=ROOT / "reports" / "CUDA.md")
    args = parser.parse_args()
    if args.command == "render":
        args.md.write_text(render(json.loads(args.json.read_text())))
    elif args.command == "pack":
        pack(args.dest)
    elif args.command == "kernels":
        sys.stdout.write(kernel_module(args.provider))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        measure(args.models, args.json, args.md)


if __name__ == "__main__":
    main()
