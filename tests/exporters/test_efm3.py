"""EFM3 as its contract specifies it: layout, refusals, numpy engine parity with torch and ONNX Runtime, CLI."""

import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from onnxfit.cli import app
from onnxfit.errors import OnnxfitError
from onnxfit.exporters import efm3
from onnxfit.exporters.efm3 import ARCHS, Efm3Engine, face_like_inputs, parse_efm3, read_efm3, tensor_specs
from onnxfit.exporters.mobilefacenet import MobileFaceNet, export_onnx, randomize_

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
NANO_BIN = WEIGHTS / "facex_nano.bin"
NANO_ONNX = WEIGHTS / "facex_nano.onnx"
TOL = 1e-5  # max abs error between unit-length embeddings
runner = CliRunner()


def _model(arch: str, seed: int = 0) -> MobileFaceNet:
    return randomize_(MobileFaceNet(arch), seed).eval()


def _bytes_of(model: MobileFaceNet) -> bytes:
    return efm3.efm3_bytes(*efm3.tensors_from_state_dict(model.state_dict()))


def _torch_embed(model: MobileFaceNet, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


def _ort_embed(path: Path, images: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {"input": images})[0]


@pytest.fixture(scope="module")
def nano_bytes() -> bytes:
    return NANO_BIN.read_bytes()


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """A tiny model, its EFM3 file and its ONNX export (BN folded by the exporter)."""
    directory = tmp_path_factory.mktemp("tiny")
    model = _model("tiny", seed=2)
    bin_path = efm3.write_efm3(directory / "tiny.bin", *efm3.tensors_from_state_dict(model.state_dict()))
    return model, bin_path, export_onnx(model, directory / "tiny.onnx")


# ------------------------------------------------------------------------------ layout


@pytest.mark.parametrize("name", list(ARCHS))
def test_round_trip_keeps_every_tensor_bit_exact(name):
    model = _model(name, seed=7)
    parsed = parse_efm3(_bytes_of(model))
    state = model.state_dict()
    assert parsed.arch == ARCHS[name]
    assert list(parsed.tensors) == [n for n, _ in tensor_specs(ARCHS[name])]
    for key, value in parsed.tensors.items():
        assert np.array_equal(value, state[key].numpy()), key


@pytest.mark.parametrize("name", list(ARCHS))
def test_header_and_json_fields_follow_the_spec(name):
    arch = ARCHS[name]
    data = _bytes_of(MobileFaceNet(name))
    assert data[:4] == b"EFM3" and struct.unpack_from("<I", data, 4) == (3,)
    fixed = struct.unpack_from("<BBBBHHHHB3x", data, 8)
    assert fixed == (1, 5, 3, 2, *arch.channels, arch.embedding, 7)
    stages = [struct.unpack_from("<BBBB4x", data, 24 + 8 * i) for i in range(8)]
    assert stages == [(2, 5, 2, 0), (4, 1, 2, 0), (2, 6, 1, 0), (4, 1, 2, 0), (2, 2, 1, 0)] + [(0, 0, 0, 0)] * 3
    assert data[24 + 40:88] == bytes(24)
    (json_len,) = struct.unpack_from("<I", data, 88)
    text = data[92:92 + json_len].decode()
    assert text == json.dumps(json.loads(text), separators=(",", ":"))  # compact separators
    assert json.loads(text) == {
        "name": name, "width_mult": arch.width, "stem_channels": arch.stem_channels,
        "block_channels": arch.block_channels, "final_channels": arch.final_channels,
        "embedding_dim": arch.embedding, "gdc_kernel": 7,
        "stages": [{"t": 2, "n": 5, "s": 2}, {"t": 4, "n": 1, "s": 2}, {"t": 2, "n": 6, "s": 1},
                   {"t": 4, "n": 1, "s": 2}, {"t": 2, "n": 2, "s": 1}],
    }
    (n_tensors,) = struct.unpack_from("<I", data, 92 + json_len)
    assert n_tensors == 50 * 5 + 33
    (first_size,) = struct.unpack_from("<I", data, 96 + json_len)
    assert first_size == 4 * arch.stem_channels * 3 * 3 * 3


def test_committed_nano_file_is_what_make_sample_writes(tmp_path, nano_bytes):
    bin_path, onnx_path = efm3.make_sample(tmp_path, "nano", seed=0)
    assert bin_path.read_bytes() == nano_bytes
    model = onnx.load(onnx_path)
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["embedding"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 112, 112]
    assert model.opset_import[0].version == 17
    assert NANO_BIN.stat().st_size < 5 * 2**20 and NANO_ONNX.stat().st_size < 5 * 2**20


# ---------------------------------------------------------------------------- refusals


def _patched(data: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _json_len(data: bytes) -> int:
    return struct.unpack_from("<I", data, 88)[0]


REFUSALS = {
    "wrong magic": (lambda d: b"EFM2" + d[4:], "not an EFM3 file"),
    "wrong version": (lambda d: _patched(d, 4, "<I", 2), "EFM3 version 2"),
    "wrong header version": (lambda d: _patched(d, 8, "<B", 2), "header version 2"),
    "n_stages over 8": (lambda d: _patched(d, 9, "<B", 9), "n_stages is 9"),
    "json_len past EOF": (lambda d: _patched(d, 88, "<I", len(d)), "truncated: the JSON copy"),
    "huge json_len": (lambda d: _patched(d, 88, "<I", 0xFFFFFFFF), "truncated: the JSON copy (json_len 4294967295)"),
    "n_tensors mismatch": (lambda d: _patched(d, 92 + _json_len(d), "<I", 282), "n_tensors is 282, but the arch"),
    "wrong tensor size": (
        lambda d: _patched(d, 96 + _json_len(d), "<I", 2596), "tensor 0 (stem.conv.weight) is 2596 bytes"),
    "huge tensor size": (lambda d: _patched(d, 96 + _json_len(d), "<I", 0xFFFFFFFF), "is 4294967295 bytes"),
    "truncated mid-tensor": (lambda d: d[:len(d) // 2], "truncated: tensor"),
    "truncated in a size field": (lambda d: d[:96 + _json_len(d) + 2], "truncated: the size of tensor 0"),
    "trailing bytes": (lambda d: d + b"\0\0\0", "3 trailing bytes"),
    "empty file": (lambda d: b"", "not an EFM3 file"),
    "truncated header": (lambda d: d[:50], "truncated: the 80-byte arch header"),
    "GDConv kernel not the 7x7 map": (lambda d: _patched(d, 20, "<B", 5), "reduces a 112x112 input to 7x7"),
    "used stage with n=0": (lambda d: _patched(d, 25, "<B", 0), "stage 0"),
    "unused stage not zero": (lambda d: _patched(d, 24 + 8 * 6, "<B", 2), "unused stage record 6"),
    "JSON not JSON": (lambda d: d[:92] + b"x" + d[93:], "not valid UTF-8 JSON"),
    "JSON contradicts header": (
        lambda d: d.replace(b'"embedding_dim":256', b'"embedding_dim":512'), "embedding_dim=512, the header 256"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_reader_refuses_malformed_files_with_a_clear_error(case, nano_bytes, tmp_path):
    mutate, message = REFUSALS[case]
    path = tmp_path / "bad.bin"
    path.write_bytes(mutate(nano_bytes))
    with pytest.raises(OnnxfitError) as caught:
        read_efm3(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("case", ["huge json_len", "huge tensor size"])
def test_huge_lengths_never_size_an_allocation(case, nano_bytes):
    data = REFUSALS[case][0](nano_bytes)
    tracemalloc.start()
    with pytest.raises(OnnxfitError):
        parse_efm3(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20


def test_reader_refuses_a_missing_file(tmp_path):
    with pytest.raises(OnnxfitError, match="no such file"):
        read_efm3(tmp_path / "absent.bin")


# ------------------------------------------------------------------------------ parity


def test_nano_engine_matches_torch_and_onnxruntime():
    parsed = read_efm3(NANO_BIN)
    images = face_like_inputs(4, seed=0)
    ours = Efm3Engine(parsed).embed(images)
    model = randomize_(MobileFaceNet("nano"), 0).eval()  # what make_sample wrote
    assert ours.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    assert np.max(np.abs(ours - _torch_embed(model, images))) <= TOL
    assert np.max(np.abs(ours - _ort_embed(NANO_ONNX, images))) <= TOL


def test_tiny_engine_matches_torch_and_onnxruntime(tiny_pair):
    model, bin_path, onnx_path = tiny_pair
    images = face_like_inputs(3, seed=1)
    ours = Efm3Engine(read_efm3(bin_path)).embed(images)
    assert ours.shape == (3, 512)
    assert np.max(np.abs(ours - _torch_embed(model, images))) <= TOL
    assert np.max(np.abs(ours - _ort_embed(onnx_path, images))) <= TOL


def test_onnx_with_folded_batchnorm_gives_the_same_engine_output_as_torch_source(tiny_pair):
    model, bin_path, onnx_path = tiny_pair
    arch, tensors = efm3.tensors_from_onnx(onnx.load(onnx_path))
    assert arch == ARCHS["tiny"]
    assert np.all(tensors["stem.bn.weight"] == 1) and np.all(tensors["stem.bn.running_mean"] == 0)
    from_onnx = parse_efm3(efm3.efm3_bytes(arch, tensors))
    images = face_like_inputs(2, seed=4)
    a = Efm3Engine(from_onnx).embed(images)
    b = Efm3Engine(read_efm3(bin_path)).embed(images)
    assert np.max(np.abs(a - b)) <= TOL


def test_identity_batchnorm_folds_to_exactly_the_conv_bias():
    var, eps = efm3.IDENTITY_VAR, np.float32(efm3.BN_EPS)
    assert var + eps == np.float32(1.0) and np.sqrt(var + eps) == np.float32(1.0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is deprecated, and wanted here
def test_onnx_with_unfolded_batchnorm_gives_the_raw_tensors_bit_exact():
    import io

    model = _model("nano", seed=9)
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(1, 3, 112, 112),), buffer, dynamo=False, opset_version=17,
                      do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    proto = onnx.load_from_string(buffer.getvalue())
    assert any(n.op_type == "BatchNormalization" for n in proto.graph.node)
    arch, tensors = efm3.tensors_from_onnx(proto)
    state = model.state_dict()
    assert arch == ARCHS["nano"]
    for key, value in tensors.items():
        assert np.array_equal(value, state[key].numpy()), key


def test_batchnorm_eps_other_than_1e5_is_moved_into_the_variance():
    model = _model("nano", seed=4)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eps = 1e-3
    eps = {name: m.eps for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    parsed = parse_efm3(efm3.efm3_bytes(*efm3.tensors_from_state_dict(model.state_dict(), bn_eps=eps)))
    images = face_like_inputs(2, seed=0)
    assert np.max(np.abs(Efm3Engine(parsed).embed(images) - _torch_embed(model, images))) <= TOL


def test_sources_that_do_not_fit_the_arch_are_refused(tiny_pair):
    model, _, onnx_path = tiny_pair
    with pytest.raises(OnnxfitError, match="layer stem of nano.*weight shape"):
        efm3.tensors_from_state_dict(model.state_dict(), "tiny.pt", ARCHS["nano"])
    truncated = dict(list(model.state_dict().items())[:-7])
    with pytest.raises(OnnxfitError, match="match none of the MobileFaceNet archs"):
        efm3.tensors_from_state_dict(truncated, "cut.pt")
    with pytest.raises(OnnxfitError, match="49 conv layers, but arch tiny has 50"):
        efm3.tensors_from_state_dict(truncated, "cut.pt", ARCHS["tiny"])


# --------------------------------------------------------------------------------- CLI


def test_cli_verify_passes_on_the_committed_pair():
    result = runner.invoke(app, ["efm3", "verify", str(NANO_BIN), "--onnx", str(NANO_ONNX), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and report["max_abs_err"] <= TOL and report["arch"] == "nano"
    result = runner.invoke(app, ["efm3", "verify", str(NANO_BIN), "--torch", "--batch", "2", "--seed", "3"])
    assert result.exit_code == 0 and "PASS" in result.stdout


def test_cli_verify_fails_with_exit_1_on_a_perturbed_file(tmp_path):
    parsed = read_efm3(NANO_BIN)
    tensors = dict(parsed.tensors)
    tensors["stem.bn.running_mean"] = tensors["stem.bn.running_mean"] + np.float32(0.05)
    perturbed = efm3.write_efm3(tmp_path / "perturbed.bin", parsed.arch, tensors)
    result = runner.invoke(app, ["efm3", "verify", str(perturbed), "--onnx", str(NANO_ONNX), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["passed"] and report["max_abs_err"] > TOL


def test_cli_verify_bad_input_is_one_line_exit_2(tmp_path):
    (tmp_path / "bad.bin").write_bytes(b"EFM3\x03\0\0\0")
    result = runner.invoke(app, ["efm3", "verify", str(tmp_path / "bad.bin")])
    assert result.exit_code == 2 and "truncated" in result.stderr and "Traceback" not in result.output
    result = runner.invoke(app, ["efm3", "verify", str(NANO_BIN), "--torch", "--onnx", str(NANO_ONNX)])
    assert result.exit_code == 2 and "give one of them" in result.stderr


def test_cli_inspect_json_reports_header_tensors_and_size():
    result = runner.invoke(app, ["efm3", "inspect", str(NANO_BIN), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["file_size"] == NANO_BIN.stat().st_size
    assert info["header"]["stem_channels"] == 24 and info["header"]["embedding_dim"] == 256
    assert info["header"]["n_stages"] == 5 and info["header"]["gdc_kernel"] == 7
    assert info["json"]["name"] == "nano" and info["json"]["width_mult"] == 0.36
    assert info["n_tensors"] == 283
    assert info["parameters"] == sum(int(np.prod(shape)) for _, shape in tensor_specs(ARCHS["nano"]))
    assert info["layers"][0] == {"name": "stem", "conv": [24, 3, 3, 3], "stride": 2, "groups": 1,
                                 "bn": [24], "prelu": [24]}
    assert info["layers"][-1]["name"] == "embed_proj" and info["layers"][-1]["prelu"] is None


def test_cli_export_from_onnx_infers_the_arch_and_runs_like_the_twin(tmp_path):
    out = tmp_path / "from_onnx.bin"
    result = runner.invoke(app, ["export", "efm3", str(NANO_ONNX), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"source": str(NANO_ONNX), "output": str(out), "arch": "nano",
                                         "n_tensors": 283, "file_size": NANO_BIN.stat().st_size}
    images = face_like_inputs(2, seed=5)
    exported = Efm3Engine(read_efm3(out)).embed(images)
    assert np.max(np.abs(exported - Efm3Engine(read_efm3(NANO_BIN)).embed(images))) <= TOL


@pytest.mark.parametrize("saved", ["state_dict", "module"])
def test_cli_export_from_a_torch_checkpoint_equals_the_direct_writer(saved, tmp_path, nano_bytes):
    model = randomize_(MobileFaceNet("nano"), 0)
    torch.save(model.state_dict() if saved == "state_dict" else model, tmp_path / "ckpt.pt")
    out = tmp_path / "facex_nano.bin"
    result = runner.invoke(app, ["export", "efm3", str(tmp_path / "ckpt.pt"), "--arch", "nano", "-o", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arch"] == "nano"
    assert out.read_bytes() == nano_bytes


def test_cli_export_refuses_a_mismatched_arch_without_writing(tmp_path, tiny_pair):
    _, _, onnx_path = tiny_pair
    out = tmp_path / "x.bin"
    result = runner.invoke(app, ["export", "efm3", str(onnx_path), "--arch", "nano", "-o", str(out)])
    assert result.exit_code == 2 and "expected [24, 3, 3, 3]" in " ".join(result.stderr.split())
    assert not out.exists()
    result = runner.invoke(app, ["export", "efm3", str(NANO_BIN), "-o", str(out)])
    assert result.exit_code == 2 and "already an EFM3 file" in result.stderr
    assert not out.exists()
