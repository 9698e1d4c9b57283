"""Inference section: latency of a model's variants in one process, interleaved round by round.

    python latency.py SPEC_JSON   -> one JSON line on stdout

SPEC: threads, provider, warmup, min_runs, max_runs, budget_s, variants {label: path} (the first is the
baseline the others are compared with).
"""
import json, sys, time
import numpy as np
import onnxruntime as ort
spec = json.loads(sys.argv[1])
threads, provider = spec["threads"], spec["provider"]
sessions = {}
for label, path in spec["variants"].items():
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if provider == "OpenVINOExecutionProvider":
        providers = [(provider, {"device_type": "CPU", "num_of_threads": str(threads)}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    sessions[label] = ort.InferenceSession(path, so, providers=providers)
rng = np.random.default_rng(0)
first = next(iter(sessions.values()))
feed = {}
for i in first.get_inputs():
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    feed[i.name] = rng.standard_normal(shape).astype(np.float32)
outputs = {label: s.run(None, feed) for label, s in sessions.items()}
labels = list(sessions)
base = outputs[labels[0]]
max_diff = {l: max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(base, outputs[l])) for l in labels}
warm = {}
for label, s in sessions.items():
    t = time.perf_counter()
    for _ in range(spec["warmup"]):
        s.run(None, feed)
    warm[label] = (time.perf_counter() - t) / spec["warmup"]
per_round = sum(warm.values())
rounds = int(min(spec["max_runs"], max(spec["min_runs"], spec["budget_s"] / max(per_round, 1e-6))))
times = {l: [] for l in labels}
for r in range(rounds):
    order = labels[r % len(labels):] + labels[:r % len(labels)]
    for label in order:
        s = sessions[label]
        t = time.perf_counter_ns()
        s.run(None, feed)
        times[label].append((time.perf_counter_ns() - t) / 1e6)
med = {l: float(np.median(v)) for l, v in times.items()}
pair = {l: float(np.median(np.array(times[labels[0]]) / np.array(times[l]))) for l in labels}
q = {l: [float(np.percentile(v, 25)), float(np.percentile(v, 75))] for l, v in times.items()}
print(json.dumps({"runs": rounds, "median_ms": med, "iqr_ms": q, "pair_ratio": pair, "max_abs_diff": max_diff,
                  "providers": {l: s.get_providers() for l, s in sessions.items()}}))
