"""Model builders shared by several test files.

Builders used by one file stay in that file; the ONNX helpers they are made with (``make_model``,
``tensor_info``) and the fixtures live in tests/conftest.py.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import make_model, tensor_info

_RNG = np.random.default_rng(0)
# Weights of the small conv nets below: a 3->4 channel 3x3 conv (W, B) and a 4->2 Gemm (G).
W = (_RNG.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
B = _RNG.standard_normal(4).astype(np.float32)
G = _RNG.standard_normal((2, 4)).astype(np.float32)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def relu_model():
    """``y = Relu(x)`` on ``[1, 4]``: a model no pass has anything to rewrite in."""
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 4])], [tensor_info("y", [1, 4])])


def scalar_gather_model(batch="N", width=3, index=1):
    """``y = x[:, index]`` as a Gather with a scalar index (node ``pick``), ``x`` of ``[batch, width]``.

    With a symbolic batch the CoreML EP of every release refuses this scalar Gather, so a run for
    that target always rewrites it (with a static batch, onnxruntime >= 1.27 takes it as it is).
    """
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [index])
    return make_model([helper.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="pick")],
                      [tensor_info("x", [batch, width])], [tensor_info("y", [batch])], [idx])



def conv_net(batch="N", weight=W):
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm: frames never meet."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flat"),
        helper.make_node("Gemm", ["f", "g"], ["y"], transB=1, name="fc"),
    ]
    return make_model(
        nodes, [tensor_info("x", [batch, 3, 16, 16])], [tensor_info("y", [batch, 2])],
        [const("w", weight), const("b", B), const("g", G)],
    )


def naive_rows_net():
    """A naive batch re-export: Reshape(-1, 2) folds the batch into the rows ([N*128, 2])."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Reshape", ["c", "shape"], ["y"], name="flatten_rows"),
    ]
    return make_model(
        nodes, [tensor_info("x", ["N", 3, 8, 8])], [tensor_info("y", [None, 2])],
        [const("w", W), const("b", B), const("shape", np.array([-1, 2], np.int64))],
    )


def softmax_mixing_net():
    """Rows of all frames merged, a Softmax over the merged axis, then split back to [N, 128, 2]."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Reshape", ["c", "rows_shape"], ["rows"], name="to_rows"),
        helper.make_node("Softmax", ["rows"], ["sm"], axis=0, name="softmax"),
        helper.make_node("Reshape", ["sm", "frames_shape"], ["y"], name="to_frames"),
    ]
    return make_model(
        nodes, [tensor_info("x", ["N", 3, 8, 8])], [tensor_info("y", ["N", 128, 2])],
        [const("w", W), const("b", B), const("rows_shape", np.array([-1, 2], np.int64)),
         const("frames_shape", np.array([-1, 128, 2], np.int64))],
    )
