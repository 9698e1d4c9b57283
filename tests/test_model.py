"""Model I/O: loading refuses bad files with one clear error; saving is atomic and preserving."""


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxfit.errors import OnnxfitError
from onnxfit.model import load_model, parse_input_shapes, resolve_input_shapes, save_model
from tests.conftest import make_model, run_ort, tensor_info
from tests.models import relu_model


def test_load_missing_file_names_the_file(tmp_path):
    with pytest.raises(OnnxfitError, match="missing.onnx: no such file"):
        load_model(tmp_path / "missing.onnx")


def test_load_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(OnnxfitError, match="empty file"):
        load_model(path)


@pytest.mark.parametrize("payload", [b"hello, this is not a model\n" * 10, bytes(range(256)) * 4, b"\x08"])
def test_load_not_a_model(tmp_path, payload):
    path = tmp_path / "junk.onnx"
    path.write_bytes(payload)
    with pytest.raises(OnnxfitError, match="junk.onnx: not"):
        load_model(path)


def test_load_truncated_model(tmp_path):
    weights = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [tensor_info("x", [1, 64])],
                       [tensor_info("y", [1, 64])], [weights])
    data = model.SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxfitError, match="cut.onnx"):
        load_model(path)


def test_load_cycle_is_refused(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second")]
    model = make_model(nodes, [tensor_info("x", [1])], [tensor_info("a", [1])])
    path = tmp_path / "cycle.onnx"
    onnx.save(model, path)
    with pytest.raises(OnnxfitError, match="cycle"):
        load_model(path)


def test_load_unknown_opset(tmp_path):
    model = relu_model()
    model.opset_import[0].version = 999
    path = tmp_path / "future.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxfitError, match="opset 999"):
        load_model(path)


def test_external_data_outside_model_directory_is_refused(tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(np.ones(16, np.float32).tobytes())
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16])
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "64")):
        weights.external_data.add(key=key, value=value)
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [tensor_info("x", [16])], [tensor_info("y", [16])],
                       [weights])
    path = model_dir / "escape.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxfitError, match="outside the model directory"):
        load_model(path)


def test_external_data_round_trip(tmp_path):
    weights = numpy_helper.from_array(np.arange(4096, dtype=np.float32), "w")
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [tensor_info("x", [4096])],
                       [tensor_info("y", [4096])], [weights])
    out = save_model(model, tmp_path / "ext.onnx", external_data=True)
    assert (tmp_path / "ext.onnx.data").stat().st_size == 4096 * 4
    loaded = load_model(out)
    x = np.ones(4096, np.float32)
    assert np.array_equal(run_ort(loaded, {"x": x})[0], x + np.arange(4096, dtype=np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ext.onnx", "ext.onnx.data"]


def test_save_into_missing_directory_writes_nothing(tmp_path):
    with pytest.raises(OnnxfitError, match="does not exist"):
        save_model(relu_model(), tmp_path / "nope" / "out.onnx")
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "out.onnx"
    target.write_bytes(b"previous")
    save_model(relu_model(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.onnx"]
    assert onnx.load(target).graph.node[0].op_type == "Relu"


def test_parse_input_shapes_named_and_unnamed():
    assert parse_input_shapes(["images=1x3x640x640", "2,3"]) == {"images": (1, 3, 640, 640), None: (2, 3)}
    with pytest.raises(OnnxfitError, match="bad shape"):
        parse_input_shapes(["x=1xfoo"])


def test_resolve_input_shapes_checks_names_and_fixed_dims():
    model = relu_model()
    assert resolve_input_shapes(model, {None: (1, 4)}) == {"x": (1, 4)}
    with pytest.raises(OnnxfitError, match="not a model input"):
        resolve_input_shapes(model, {"nope": (1, 4)})
    with pytest.raises(OnnxfitError, match="contradicts"):
        resolve_input_shapes(model, {"x": (2, 4)})


def _input_with_dims(dims, with_shape=True):
    vi = onnx.ValueInfoProto(name="x")
    vi.type.tensor_type.elem_type = TensorProto.FLOAT
    if with_shape:
        vi.type.tensor_type.shape.SetInParent()
        for d in dims:
            dim = vi.type.tensor_type.shape.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            elif d:
                dim.dim_param = d
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [vi], [tensor_info("y", None)])


@pytest.mark.parametrize("dims", [[-1, 3, -1, -1], [0, 3, None, None], [None, 3, "h", "w"]])
def test_resolve_input_shapes_treats_nonpositive_and_empty_dims_as_symbolic(dims):
    # Paddle writes dim_value -1 for "any size": --input-shape must fill it, not contradict it.
    model = _input_with_dims(dims)
    assert resolve_input_shapes(model, {"x": (1, 3, 48, 192)}) == {"x": (1, 3, 48, 192)}
    with pytest.raises(OnnxfitError, match=r"fixed dims \['\?', 3, .*\]; --input-shape 1x4x48x192 contradicts"):
        resolve_input_shapes(model, {"x": (1, 4, 48, 192)})


def test_resolve_input_shapes_accepts_any_rank_without_a_shape():
    model = _input_with_dims([], with_shape=False)
    assert resolve_input_shapes(model, {None: (2, 5)}) == {"x": (2, 5)}


def test_proto_dim_reads_paddle_minus_one_as_unknown():
    from onnxfit.shapes import proto_dim

    dims = onnx.TensorShapeProto(dim=[onnx.TensorShapeProto.Dimension(dim_value=-1),
                                      onnx.TensorShapeProto.Dimension(dim_value=0),
                                      onnx.TensorShapeProto.Dimension(dim_param="h"),
                                      onnx.TensorShapeProto.Dimension(),
                                      onnx.TensorShapeProto.Dimension(dim_value=3)]).dim
    assert [proto_dim(d) for d in dims] == [None, None, "h", None, 3]


def test_resolve_input_shapes_on_paddle_cls_model(zoo_model):
    # ppocr_mobile_v2_cls declares x: [-1, 3, ?, ?].
    model = load_model(zoo_model("ppocr_mobile_v2_cls"))
    assert resolve_input_shapes(model, {"x": (1, 3, 48, 192)}) == {"x": (1, 3, 48, 192)}
