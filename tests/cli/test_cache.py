"""`onnxfit cache ...` and `optimize --cache` through the real command line."""

import json
import subprocess
import sys

import onnx
import pytest

from tests.models import scalar_gather_model


@pytest.fixture
def env(tmp_path):
    import os

    return {**os.environ, "ONNXFIT_CACHE_DIR": str(tmp_path / "cache")}


def onnxfit(env, *args):
    return subprocess.run([sys.executable, "-m", "onnxfit", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "gather.onnx"
    onnx.save(scalar_gather_model(batch="N"), path)  # the CoreML EP refuses it: the cache holds a rewrite
    return path


def test_optimize_cache_then_list_info_prune_clear(env, model, tmp_path):
    first = onnxfit(env, "optimize", model, "--cache", "--target", "coreml", "--json", "--no-partitions")
    assert first.returncode == 0, first.stderr
    (entry,) = json.loads(first.stdout)["models"]
    assert entry["hit"] is False and entry["cached"].startswith(str(tmp_path / "cache"))
    second = json.loads(onnxfit(env, "optimize", model, "--cache", "--target", "coreml", "--json",
                                "--no-partitions").stdout)["models"][0]
    assert second["hit"] is True and second["cached"] == entry["cached"]

    assert onnxfit(env, "cache", "path").stdout.strip() == str(tmp_path / "cache")
    listed = json.loads(onnxfit(env, "cache", "list", "--json").stdout)
    assert [e["key"] for e in listed] == [entry["key"]] and listed[0]["target"] == "coreml"
    info = json.loads(onnxfit(env, "cache", "info", entry["key"][:8], "--json").stdout)
    assert info["meta"]["source"] == str(model.resolve())
    pruned = json.loads(onnxfit(env, "cache", "prune", "--max-size", "1", "--json").stdout)
    assert pruned["evicted"] == [entry["key"]] and pruned["size"] == 0
    onnxfit(env, "optimize", model, "--cache", "--target", "coreml", "--no-partitions")
    assert "removed 1 entries" in onnxfit(env, "cache", "clear").stdout
    assert json.loads(onnxfit(env, "cache", "list", "--json").stdout) == []


def test_optimize_cache_copies_to_output(env, model, tmp_path):
    out = tmp_path / "copy.onnx"
    result = onnxfit(env, "optimize", model, "--cache", "-o", out, "--target", "coreml", "--no-partitions")
    assert result.returncode == 0, result.stderr
    assert any(n.op_type == "Squeeze" for n in onnx.load(out).graph.node)


def test_prune_bad_size_and_unknown_entry_exit_2(env):
    bad = onnxfit(env, "cache", "prune", "--max-size", "lots")
    assert bad.returncode == 2 and "bad size 'lots'" in bad.stderr
    missing = onnxfit(env, "cache", "info", "ffff")
    assert missing.returncode == 2 and "no cache entries match" in missing.stderr


def test_optimize_without_output_or_cache_is_a_usage_error(env, model):
    result = onnxfit(env, "optimize", model)
    assert result.returncode == 2 and "-o OUT" in result.stderr


def test_verify_removes_an_entry_damaged_in_place_and_exits_1(env, model):
    import os

    first = json.loads(onnxfit(env, "optimize", model, "--cache", "--target", "coreml", "--json",
                               "--no-partitions").stdout)["models"][0]
    artefact = first["cached"]
    stat = os.stat(artefact)
    with open(artefact, "r+b") as handle:  # same size, same inode, and the mtime put back
        handle.seek(-8, os.SEEK_END)
        handle.write(bytes(8))
    os.utime(artefact, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    found = onnxfit(env, "cache", "verify", "--json")
    assert found.returncode == 1, found.stderr
    assert json.loads(found.stdout) == {"checked": 1, "removed": [
        {"key": first["key"], "source": str(model.resolve()), "reason": "model.onnx does not match its recorded digest"}]}
    clean = onnxfit(env, "cache", "verify")
    assert clean.returncode == 0 and clean.stdout.strip() == "checked 0 entries: 0 damaged"
