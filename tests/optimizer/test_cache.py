"""The per-machine cache: hits, misses, invalidation, concurrency, integrity, prune."""

import json
import multiprocessing
import os
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.app.cache import Cache, parse_size
from onnxfit.app.prepare import prepare, prepare_entry
from onnxfit.targets import auto_target
from tests.conftest import assert_same_outputs, make_model, random_feeds, tensor_info
from tests.models import relu_model, scalar_gather_model


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "models" / "m.onnx"
    path.parent.mkdir()
    onnx.save(scalar_gather_model(), path)
    return path


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def _prepare(source, cache_dir, **kwargs):
    kwargs.setdefault("passes", ["scalar-gather"])
    return prepare_entry(source, target=kwargs.pop("target", "coreml"), cache_dir=cache_dir, **kwargs)


def test_miss_then_hit_returns_same_equivalent_model(source, cache_dir):
    first = _prepare(source, cache_dir)
    second = _prepare(source, cache_dir)
    assert (first.hit, second.hit) == (False, True)
    assert first.path == second.path and first.path.is_relative_to(cache_dir)
    original, cached = onnx.load(source), onnx.load(first.path)
    assert any(n.op_type == "Squeeze" for n in cached.graph.node)
    assert_same_outputs(original, cached, random_feeds(original))


def test_changed_source_invalidates(source, cache_dir):
    first = _prepare(source, cache_dir)
    onnx.save(scalar_gather_model(index=2), source)
    second = _prepare(source, cache_dir)
    assert not second.hit and second.key != first.key
    feeds = random_feeds(onnx.load(source))
    assert_same_outputs(onnx.load(source), onnx.load(second.path), feeds)


def test_targets_and_shapes_give_different_entries(source, cache_dir):
    coreml = _prepare(source, cache_dir, target="coreml")
    nnapi = _prepare(source, cache_dir, target="nnapi")
    shaped = _prepare(source, cache_dir, target="coreml", input_shapes={"x": (2, 3)})
    assert len({coreml.key, nnapi.key, shaped.key}) == 3
    assert len(Cache(cache_dir).entries()) == 3


def test_unchanged_model_returns_the_source_path(tmp_path, cache_dir):
    path = tmp_path / "relu.onnx"
    onnx.save(relu_model(), path)
    first = _prepare(path, cache_dir)
    second = _prepare(path, cache_dir)
    assert first.path == path and second.path == path and second.hit and not second.rewritten


def _worker(args):
    source, cache_dir = args
    entry = prepare_entry(source, target="coreml", cache_dir=cache_dir, passes=["scalar-gather"])
    return str(entry.path), entry.hit


def test_four_concurrent_processes_build_once(source, cache_dir):
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.map(_worker, [(source, cache_dir)] * 4)
    assert len({path for path, _ in results}) == 1
    assert sorted(hit for _, hit in results) == [False, True, True, True]
    assert len(Cache(cache_dir).entries()) == 1


def test_corrupted_entry_is_rebuilt_never_served(source, cache_dir):
    first = _prepare(source, cache_dir)
    data = bytearray(first.path.read_bytes())
    data[-20:] = b"\x00" * 20  # same size, different bytes
    first.path.write_bytes(bytes(data))
    os.utime(first.path, ns=(time.time_ns(), time.time_ns() + 10**9))
    again = _prepare(source, cache_dir)
    assert not again.hit
    assert again.path.read_bytes() != bytes(data)
    assert_same_outputs(onnx.load(source), onnx.load(again.path), random_feeds(onnx.load(source)))


def test_partial_entry_without_metadata_is_rebuilt(source, cache_dir):
    first = _prepare(source, cache_dir)
    (first.path.parent / "meta.json").unlink()
    again = _prepare(source, cache_dir)
    assert not again.hit and (again.path.parent / "meta.json").exists()


def test_failed_build_leaves_no_entry(source, cache_dir):
    cache = Cache(cache_dir)

    def broken_builder(tmp_dir):
        (tmp_dir / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.build("somekey", broken_builder)
    assert cache.entries() == [] and list((cache_dir / "tmp").iterdir()) == []


def test_read_only_source_directory_is_never_written(source, cache_dir):
    before = sorted(p.name for p in source.parent.iterdir())
    os.chmod(source.parent, 0o555)
    try:
        entry = _prepare(source, cache_dir)
    finally:
        os.chmod(source.parent, 0o755)
    assert sorted(p.name for p in source.parent.iterdir()) == before
    assert entry.path.is_relative_to(cache_dir)


def test_prune_evicts_least_recently_used(tmp_path, cache_dir):
    paths = []
    for i in range(3):
        path = tmp_path / f"m{i}.onnx"
        onnx.save(scalar_gather_model(width=200 + i), path)
        paths.append(path)
    entries = [_prepare(p, cache_dir) for p in paths]
    now = time.time()
    for age, entry in zip((300, 100, 200), entries):  # m1 newest, m0 oldest
        os.utime(entry.path.parent / "last_used", (now - age, now - age))
    sizes = {e.key: e.size for e in Cache(cache_dir).entries()}
    keep = sizes[entries[1].key] + sizes[entries[2].key]
    evicted = Cache(cache_dir).prune(keep)
    assert [e.key for e in evicted] == [entries[0].key]
    assert {e.key for e in Cache(cache_dir).entries()} == {entries[1].key, entries[2].key}


def test_prepare_env_cache_dir_and_auto_target(source, cache_dir, monkeypatch):
    monkeypatch.setenv("ONNXFIT_CACHE_DIR", str(cache_dir))
    path = prepare(source, target="auto")
    assert auto_target(["CPUExecutionProvider"]) == "cpu"
    assert auto_target(["CoreMLExecutionProvider", "CPUExecutionProvider"]) == "coreml"
    assert auto_target(["TensorrtExecutionProvider", "CUDAExecutionProvider"]) == "cuda"  # TensorRT is asked for by name
    assert auto_target(["TensorrtExecutionProvider", "CPUExecutionProvider"]) == "tensorrt"
    # "auto" is the target of this onnxruntime's EPs, and the entry went to $ONNXFIT_CACHE_DIR:
    # the same request with both spelled out is a hit on that one entry, with that one path.
    entry = prepare_entry(source, target=auto_target(), cache_dir=cache_dir)
    assert entry.hit and entry.path == path
    assert [e.key for e in Cache(cache_dir).entries()] == [entry.key]
    assert entry.path == (cache_dir / "entries" / entry.key / "model.onnx" if entry.rewritten else source)


def test_parse_size():
    assert parse_size("2GB") == 2 * 10**9
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size("1000") == 1000
    with pytest.raises(OnnxfitError, match="bad size"):
        parse_size("lots")


def test_external_data_is_part_of_the_key(tmp_path, cache_dir):
    from onnxfit.model import save_model

    weights = numpy_helper.from_array(np.ones((512, 1024), np.float32), "w")  # 2 MiB, external
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [0])
    model = make_model([helper.make_node("Gather", ["w", "idx"], ["g"], axis=0),
                        helper.make_node("Add", ["x", "g"], ["y"])], [tensor_info("x", [1024])],
                       [tensor_info("y", [1024])], [weights, idx])
    source = tmp_path / "ext.onnx"
    save_model(model, source, external_data=True)
    first = _prepare(source, cache_dir)
    assert _prepare(source, cache_dir).hit
    data = tmp_path / "ext.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[-4:] = np.float32(2.0).tobytes()
    data.write_bytes(bytes(raw))
    second = _prepare(source, cache_dir)
    assert not second.hit and second.key != first.key
    feeds = random_feeds(model)
    from onnxfit.model import load_model

    assert_same_outputs(load_model(source), load_model(second.path), feeds)


def _no_hashing(monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr("onnxfit.app.cache.file_digest", refuse)


def test_hit_with_unchanged_stats_reads_neither_source_nor_artefact(source, cache_dir, monkeypatch):
    first = _prepare(source, cache_dir)
    # What a fresh process has: the digest memo and the entry's recorded stat, nothing in memory.
    _no_hashing(monkeypatch)
    second = _prepare(source, cache_dir)
    assert second.hit and second.path == first.path


def test_artefact_with_a_new_stat_is_rehashed_once_then_trusted(source, cache_dir, monkeypatch):
    import onnxfit.app.cache as cache_module

    first = _prepare(source, cache_dir)
    stat = first.path.stat()
    os.utime(first.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, as after a copy
    hashed = []
    digest = cache_module.file_digest
    monkeypatch.setattr(cache_module, "file_digest", lambda path: hashed.append(path) or digest(path))
    assert _prepare(source, cache_dir).hit and hashed == [first.path]
    _no_hashing(monkeypatch)
    assert _prepare(source, cache_dir).hit


def test_verify_finds_damage_that_keeps_size_and_mtime_and_removes_the_entry(source, cache_dir):
    first = _prepare(source, cache_dir)
    other = _prepare(source, cache_dir, target="nnapi")
    stat = first.path.stat()
    data = bytearray(first.path.read_bytes())
    data[-20:] = b"\x00" * 20
    first.path.write_bytes(bytes(data))  # in place: the inode stays
    os.utime(first.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    checked, damaged = Cache(cache_dir).verify()
    assert checked == 2
    assert [(d.key, d.source, d.reason) for d in damaged] == [
        (first.key, str(source.resolve()), "model.onnx does not match its recorded digest")]
    assert [e.key for e in Cache(cache_dir).entries()] == [other.key]
    again = _prepare(source, cache_dir)
    assert not again.hit
    assert_same_outputs(onnx.load(source), onnx.load(again.path), random_feeds(onnx.load(source)))
    assert Cache(cache_dir).verify() == (2, [])


def test_digest_memo_keeps_other_files_and_one_record_per_file(tmp_path, cache_dir):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"m{i}.onnx")
        onnx.save(scalar_gather_model(width=3 + i), paths[-1])
    cache = Cache(cache_dir)
    before = [cache.source_digest(p) for p in paths]
    onnx.save(scalar_gather_model(index=2, width=3), paths[0])
    after = cache.source_digest(paths[0])
    memo = json.loads((cache_dir / "digests.json").read_text())
    assert after != before[0]
    assert sorted(key.rsplit("|", 3)[0] for key in memo) == sorted(str(p.resolve()) for p in paths)
    assert {v["digest"] for v in memo.values()} == {after, before[1]}
