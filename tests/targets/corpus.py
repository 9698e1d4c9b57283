"""Small models for partition tests, built with onnx.helper, plus the sample models in weights/.

Each model holds one situation that decides a partition count: an op an EP lacks in the middle
of a chain, on a branch, next to a Conv, a dtype an EP refuses, a trailing one-node piece.
`Det` and float64 tensors serve as "unsupported": ONNX Runtime's CPU EP runs them, none of the
profiled EPs take them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import make_model, tensor_info

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
SAMPLES = ("inswapper_like.onnx", "scrfd_like.onnx", "gfpgan_like.onnx")


def _weight(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def conv_chain():
    """Conv -> Relu -> Conv -> Sigmoid: every EP takes all of it."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"], name="relu1"),
        helper.make_node("Conv", ["b", "w2"], ["c"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["y"], name="sigmoid1"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 3, 8, 8])],
                      [_weight("w1", [3, 3, 3, 3]), _weight("w2", [3, 3, 3, 3], 1)])


def unsupported_in_chain(op="Det", cut_name="cut"):
    """Relu, Sigmoid, Tanh | Det | Relu, Sigmoid, Tanh: one unsupported node cuts the chain in two."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid1"),
        helper.make_node("Tanh", ["b"], ["c"], name="tanh1"),
        helper.make_node(op, ["c"], ["d"], name=cut_name),
        helper.make_node("Relu", ["d"], ["e"], name="relu2"),
        helper.make_node("Sigmoid", ["e"], ["f"], name="sigmoid2"),
        helper.make_node("Tanh", ["f"], ["y"], name="tanh2"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3])])


def two_cuts():
    """Three supported runs separated by two Det nodes (x: [2, 2, 2, 2, 2] so Det twice is valid)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid1"),
        helper.make_node("Det", ["b"], ["c"], name="det1"),
        helper.make_node("Relu", ["c"], ["d"], name="relu2"),
        helper.make_node("Tanh", ["d"], ["e"], name="tanh2"),
        helper.make_node("Det", ["e"], ["f"], name="det2"),
        helper.make_node("Relu", ["f"], ["g"], name="relu3"),
        helper.make_node("Sigmoid", ["g"], ["y"], name="sigmoid3"),
    ]
    return make_model(nodes, [tensor_info("x", [2, 2, 2, 2])], [tensor_info("y", [2])])


def unsupported_on_branch():
    """x -> Relu -> {Det branch, Tanh branch} -> Add: the cut sits on one branch of a diamond."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid1"),
        helper.make_node("Det", ["b"], ["c"], name="det1"),
        helper.make_node("Sigmoid", ["c"], ["c2"], name="sigmoid2"),
        helper.make_node("ReduceSum", ["b", "axes"], ["t"], name="reduce1", keepdims=0),
        helper.make_node("Tanh", ["t"], ["t2"], name="tanh1"),
        helper.make_node("Add", ["c2", "t2"], ["s"], name="add1"),
        helper.make_node("Relu", ["s"], ["y"], name="relu2"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", None)],
                      [_ints("axes", [2, 3])])


def float64_island():
    """Cast to float64, Relu in float64, Cast back: float64 tensors cut OpenVINO and CoreML graphs."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid1"),
        helper.make_node("Tanh", ["b"], ["b2"], name="tanh1"),
        helper.make_node("Cast", ["b2"], ["c"], name="to_double", to=TensorProto.DOUBLE),
        helper.make_node("Relu", ["c"], ["d"], name="relu_double"),
        helper.make_node("Cast", ["d"], ["e"], name="to_float", to=TensorProto.FLOAT),
        helper.make_node("Relu", ["e"], ["f"], name="relu2"),
        helper.make_node("Sigmoid", ["f"], ["g"], name="sigmoid2"),
        helper.make_node("Tanh", ["g"], ["y"], name="tanh2"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3, 4, 4])])


def conv_into_unsupported():
    """Conv -> Relu -> Conv -> Det -> Relu...: a supported piece ending in a Conv that feeds the CPU."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"], name="relu1"),
        helper.make_node("Conv", ["b", "w2"], ["c"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Det", ["c"], ["d"], name="det1"),
        helper.make_node("Relu", ["d"], ["e"], name="relu2"),
        helper.make_node("Sigmoid", ["e"], ["f"], name="sigmoid2"),
        helper.make_node("Tanh", ["f"], ["y"], name="tanh2"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3])],
                      [_weight("w1", [3, 3, 3, 3]), _weight("w2", [3, 3, 3, 3], 1)])


def trailing_single_node():
    """Relu, Sigmoid, Tanh | Det | Relu: the last piece has one node."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid1"),
        helper.make_node("Tanh", ["b"], ["c"], name="tanh1"),
        helper.make_node("Det", ["c"], ["d"], name="det1"),
        helper.make_node("Relu", ["d"], ["y"], name="relu2"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3])])


def single_node_between_cuts():
    """Relu | Det | Sigmoid | Det | Relu, Tanh, Sigmoid: one-node pieces in the middle."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Det", ["a"], ["b"], name="det1"),
        helper.make_node("Sigmoid", ["b"], ["c"], name="sigmoid1"),
        helper.make_node("Det", ["c"], ["d"], name="det2"),
        helper.make_node("Relu", ["d"], ["e"], name="relu2"),
        helper.make_node("Tanh", ["e"], ["f"], name="tanh2"),
        helper.make_node("Sigmoid", ["f"], ["y"], name="sigmoid2"),
    ]
    return make_model(nodes, [tensor_info("x", [2, 2, 2, 2])], [tensor_info("y", [2])])


def three_pieces():
    """Three runs of at least two nodes between two Det cuts; the second run re-grows to 4D."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu1"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid1"),
        helper.make_node("Det", ["b"], ["c"], name="det1"),
        helper.make_node("Unsqueeze", ["c", "axes"], ["d"], name="unsqueeze1"),
        helper.make_node("Mul", ["d", "ones"], ["e"], name="mul1"),
        helper.make_node("Relu", ["e"], ["f"], name="relu2"),
        helper.make_node("Det", ["f"], ["g"], name="det2"),
        helper.make_node("Relu", ["g"], ["h"], name="relu3"),
        helper.make_node("Tanh", ["h"], ["y"], name="tanh3"),
    ]
    ones = numpy_helper.from_array(np.ones([1, 3, 4, 4], dtype=np.float32), "ones")
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 3])],
                      [_ints("axes", [2, 3]), ones])


def reflect_pad(mode="reflect"):
    """Conv -> Pad(mode) -> Conv, the inswapper stem pattern."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1"),
        helper.make_node("Pad", ["a", "pads"], ["b"], name="pad1", mode=mode),
        helper.make_node("Conv", ["b", "w2"], ["c"], name="conv2"),
        helper.make_node("Relu", ["c"], ["y"], name="relu1"),
    ]
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 3, 8, 8])],
                      [_weight("w1", [3, 3, 1, 1]), _weight("w2", [3, 3, 3, 3], 1),
                       _ints("pads", [0, 0, 1, 1, 0, 0, 1, 1])])


def split11_scalar_gather(batch=1):
    """Relu -> Split (opset 11, sizes as attribute) -> scalar Gather / Relu: GFPGAN's SFT and style
    code pattern. CoreML refuses both nodes before ONNX Runtime 1.27 and takes both from 1.27.
    ``batch="n"`` makes the batch symbolic, which the 1.27 scalar-Gather rule refuses."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu_in"),
        helper.make_node("Split", ["r"], ["a", "b"], name="split", axis=1, split=[1, 3]),
        helper.make_node("Gather", ["a", "i"], ["g"], name="gather", axis=1),
        helper.make_node("Sigmoid", ["g"], ["y1"], name="sigmoid_out"),
        helper.make_node("Relu", ["b"], ["y2"], name="relu_out"),
    ]
    return make_model(nodes, [tensor_info("x", [batch, 4, 8])],
                      [tensor_info("y1", [batch, 8]), tensor_info("y2", [batch, 3, 8])],
                      [numpy_helper.from_array(np.array(0, dtype=np.int64), "i")], opset=11)


def built_corpus():
    """name -> model, the models every fidelity test runs on."""
    return {
        "conv_chain": conv_chain(),
        "unsupported_in_chain": unsupported_in_chain(),
        "two_cuts": two_cuts(),
        "unsupported_on_branch": unsupported_on_branch(),
        "float64_island": float64_island(),
        "conv_into_unsupported": conv_into_unsupported(),
        "trailing_single_node": trailing_single_node(),
        "single_node_between_cuts": single_node_between_cuts(),
        "three_pieces": three_pieces(),
        "reflect_pad": reflect_pad(),
    }


def sample_paths():
    """The sample models another part of onnxfit writes into weights/ (those present)."""
    return [WEIGHTS / name for name in SAMPLES if (WEIGHTS / name).is_file()]
