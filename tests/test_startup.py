"""What a start-up path imports, in a fresh process (module presence, not timing: the times are in
reports/import_time.py and reports/cache_hit.py). ``--help`` imports no engine; a ``prepare()`` hit
reads JSON and stats and imports neither onnx, graph-surgeon, onnxruntime nor numpy."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest

from tests.models import conv_net

HEAVY = ("onnx", "onnx_graphsurgeon", "onnxruntime", "numpy", "torch", "onnxsim", "openvino")

REPORT = """
import json, sys
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def _imported(code: str, *args: str) -> list[str]:
    script = code + REPORT.format(heavy=set(HEAVY))
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["optimize", "--help"], ["verify", "--help"], ["cache", "--help"]])
def test_help_imports_no_engine(argv):
    code = ("import sys\nfrom onnxfit.cli import app\n"
            f"try:\n    app({argv!r}, prog_name='onnxfit')\nexcept SystemExit:\n    pass\n")
    assert _imported(code) == []


def test_a_prepare_hit_in_a_fresh_process_imports_no_onnx_graphsurgeon_onnxruntime_or_numpy(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(conv_net(), model)
    code = ("import sys\nfrom onnxfit.app.prepare import prepare_entry\n"
            "assert prepare_entry(sys.argv[1], cache_dir=sys.argv[2]).hit == (sys.argv[3] == 'hit')\n")
    miss = _imported(code, str(model), str(tmp_path / "cache"), "miss")
    assert "onnx_graphsurgeon" in miss  # the miss rewrites: the engine is loaded then
    assert _imported(code, str(model), str(tmp_path / "cache"), "hit") == []
