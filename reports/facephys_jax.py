"""FacePhys in its own Keras/JAX source, jitted, batch 1: the speed reference (reports/facephys_gpu.py).

Adapted from ../shared/gpu/facephys_jax_reference.py (the project's shared GPU notes): same model
construction, weights and jitted step; here as a module, so that the benchmark can time it
interleaved with ONNX Runtime in one process and feed it the same frames. The model source and
weights are open-rppg 0.1.1's (MIT, `rppg/models_code/FacePhys.py`,
`rppg/weights/FacePhys.rlap.weights.h5`), staged into .gpu/jax/ by
../shared/gpu/prepare_facephys_jax.sh; Keras 3 and five small wheels travel with them.

The model's state is a pytree whose 46 leaves, in `jax.tree_util` order, have the shapes of the
ONNX export's `state_in_0..45` in order (checked by `leaf_shapes`); `onnx_states` gives them as an
ONNX feed, so ONNX Runtime and JAX can start from the same state for a parity check. The model's
own initial state is learned (not zeros).

    PYTHONPATH=<keras wheels> python reports/facephys_jax.py .gpu/jax     # a quick timing, no ORT
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402


class JaxFacePhys:
    """The Keras model built from ``src`` (FacePhys_model.py, FacePhys.weights.h5) and its jitted step."""

    def __init__(self, src: str) -> None:
        sys.path.insert(0, os.path.abspath(src))
        from FacePhys_model import FacePhys, jax  # noqa: E402 - the model file imports keras and jax itself

        import keras

        self.jax = jax
        self.keras_version = keras.__version__
        self.model = FacePhys([2] * 4, [32] * 4)
        self.model.build((1, 1, 36, 36, 3))
        self.model.load_weights(os.path.join(src, "FacePhys.weights.h5"))
        model = self.model

        @jax.jit
        def step(x, state, dt):  # x: [36, 36, 3], as the shared reference feeds it
            r, state = model.step(x[None, None], state, dt=dt)
            return r[0, 0], state

        self.step = step
        self.dt = np.array(1 / 30, "float32")

    def init_state(self):
        return self.model.init_state((1, 1, 36, 36, 3))

    def leaf_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(leaf.shape) for leaf in self.jax.tree_util.tree_leaves(self.init_state())]

    def onnx_states(self, state=None) -> dict[str, np.ndarray]:
        """The state as an ONNX feed: leaf k -> ``state_in_k``."""
        leaves = self.jax.tree_util.tree_leaves(self.init_state() if state is None else state)
        return {f"state_in_{k}": np.asarray(leaf, np.float32) for k, leaf in enumerate(leaves)}

    def device(self) -> str:
        return str(self.jax.devices()[0])


class JaxStream:
    """Frame by frame through the jitted step, the state carried on the device (``host_states``:
    pulled to host numpy arrays after each call and passed back, as the ORT runners carry theirs)."""

    def __init__(self, fp: JaxFacePhys, frames: list[np.ndarray], host_states: bool = False, state=None) -> None:
        self.fp = fp
        self.frames = [np.ascontiguousarray(f.reshape(36, 36, 3)) for f in frames]
        self.host_states = host_states
        self.initial = fp.init_state() if state is None else state
        self.reset()

    def reset(self) -> None:
        self.state = self.fp.jax.device_get(self.initial) if self.host_states else self.initial
        self.count = 0

    def step(self) -> np.ndarray:
        x = self.frames[self.count % len(self.frames)]
        self.count += 1
        r, state = self.fp.step(x, self.state, self.fp.dt)
        self.state = self.fp.jax.device_get(state) if self.host_states else state
        return np.asarray(r)  # waits for the step, as block_until_ready does in the shared reference


def main() -> None:
    src = sys.argv[1] if len(sys.argv) > 1 else ".gpu/jax"
    fp = JaxFacePhys(src)
    rng = np.random.default_rng(0)
    stream = JaxStream(fp, [rng.random((1, 1, 36, 36, 3), dtype=np.float32) for _ in range(16)])
    for _ in range(30):
        stream.step()
    times = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 3:
        a = time.perf_counter()
        stream.step()
        times.append(time.perf_counter() - a)
    ms = float(np.median(times) * 1e3)
    print({"jax": fp.jax.__version__, "device": fp.device(), "median_ms": round(ms, 4), "runs": len(times)})


if __name__ == "__main__":
    main()
