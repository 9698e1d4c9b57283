"""Inference section: OpenVINO EP partitions of each variant (run by the OpenVINO venv's python).

    python openvino_partitions.py SPEC_JSON   -> one JSON line on stdout (SPEC: variants {label: path})
"""
import json, sys
spec = json.loads(sys.argv[1])
from onnxfit.targets.partitions import count_partitions
out = {}
for label, path in spec["variants"].items():
    try:
        r = count_partitions(path, "openvino")
        out[label] = {"source": r.source, "partitions": r.partitions, "nodes_on_ep": r.nodes_on_ep,
                      "total_nodes": r.total_nodes, "unsupported": [u.op for u in r.unsupported]}
    except Exception as exc:
        out[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
print(json.dumps(out))
