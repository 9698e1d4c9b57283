"""torch -> ONNX with a real dynamic batch, checked against the module it came from.

Why: re-exporting a detector such as SCRFD "with a batch" usually yields a model that runs at
batch 16 but flattens all frames into one ``[N*H*W, 2]`` tensor, or hardcodes batch 1 in a
Reshape, and people then hand-edit the graph. ``export_torch`` does the whole job:

1. export with the chosen exporter, batch axis named ``batch``:
   ``dynamo`` (torch.export; ``torch.export.Dim("batch")`` via ``dynamic_shapes``) or
   ``torchscript`` (the tracer; ``dynamic_axes``). Exporter failures (graph breaks, unsupported
   ops, data-dependent control flow, torch.export errors) become one ``OnnxfitError`` carrying the
   exporter's key message, not its 200-line trace. The tracer does not fail on data-dependent
   control flow, it records one branch: its "Converting a tensor to a Python boolean" warning is
   turned into that error too;
2. opset and IR: the dynamo exporter builds at opset 18 and converts down to the requested
   opset when it can (a note says when it could not, and why). Its converter runs before its
   optimizer, so an op that has no down-adapter (``Pad`` 18, from ``F.pad``) blocks the conversion
   even when the optimizer then folds it away (into the ``pads`` of the next ``Conv``, as in
   CREPE); the optimized model is converted once more. The IR version is set to the lowest one
   that carries the opset (8 for opsets 17 and 18), which every onnxruntime since 1.10 reads;
3. passes: ``dynamic-batch`` (when ``dynamic_batch``) repairs what the exported graph still
   hardcodes or merges (``Reshape [-1, 2]`` after ``Transpose(0, 2, 3, 1)`` becomes
   ``Reshape [-1, H*W, 2]``: the output gains a leading batch axis, ``[N, H*W, 2]``), then
   ``fold-shapes`` folds shape arithmetic the exporter left in the graph;
4. verify: parity of ONNX Runtime against the torch module (atol 1e-4) on seeded random inputs of
   the example shapes, and the contamination check at batch 4 (every frame run alone equals its
   slice of the batch; changing one frame changes no other). A failure raises ``CheckFailed``
   and nothing is written;
5. save atomically (``onnxfit.model.save_model``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter

from onnxfit.errors import OnnxfitError, missing_extra
from onnxfit.graphs import default_opset
from onnxfit.model import save_model
from onnxfit.app.optimize import optimize_model
from onnxfit.optimizer.pipeline import PassReport
from onnxfit.shapes import Dim, proto_shape
from onnxfit.verification.contamination import contamination_check
from onnxfit.verification.inputs import generate_inputs, model_inputs
from onnxfit.verification.parity import compare_outputs
from onnxfit.verification.report import Check, VerifyReport
from onnxfit.verification.runtimes import OrtRuntime, TorchRuntime

__all__ = ["EXPORTERS", "BATCH_DIM", "PARITY_ATOL", "ExportResult", "TensorInfo", "export_torch", "load_factory",
           "build_module"]

log = logging.getLogger(__name__)

EXPORTERS = ("dynamo", "torchscript")
BATCH_DIM = "batch"  # the name fold-shapes keeps symbolic (PassContext.batch_dim)
PARITY_ATOL = 1e-4
CONTAMINATION_BATCH = 4
_MESSAGE_LIMIT = 400
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output of the saved model, as ``inspect`` describes it."""

    name: str
    dtype: str  # numpy's name: "float32"
    shape: tuple[Dim, ...]  # ints, the batch dim's name ("batch"), None where the model leaves it unknown

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass
class ExportResult:
    path: Path
    exporter: str
    opset: int
    ir_version: int
    inputs: dict[str, TensorInfo]  # by name, in graph order
    outputs: dict[str, TensorInfo]
    passes: list[PassReport]
    verify: VerifyReport
    notes: list[str] = field(default_factory=list)

    def parity_max_abs(self) -> dict[str, float]:
        """Output name -> max |ONNX Runtime - torch|."""
        outputs = self.verify.check("parity").details["comparisons"][0]["outputs"]
        return {o["name"]: o["max_abs"] for o in outputs}

    def to_dict(self) -> dict:
        return {
            "output": str(self.path),
            "exporter": self.exporter,
            "opset": self.opset,
            "ir_version": self.ir_version,
            "inputs": [t.to_dict() for t in self.inputs.values()],
            "outputs": [t.to_dict() for t in self.outputs.values()],
            "passes": [r.to_dict() for r in self.passes],
            "parity_max_abs": self.parity_max_abs(),
            "verify": self.verify.to_dict(),
            "notes": self.notes,
        }


def export_torch(
    module,
    example_inputs,
    path: str | os.PathLike,
    dynamic_batch: bool = True,
    opset: int = 17,
    exporter: str = "dynamo",
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> ExportResult:
    """Export ``module`` (called with ``example_inputs``: a tensor or a tuple) to ``path``.

    Every tensor input of rank >= 1 is taken to carry the batch on axis 0. Names default to the
    ``forward`` parameter names and ``output`` / ``output_<i>``. See the module docstring.
    """
    import torch

    if exporter not in EXPORTERS:
        raise OnnxfitError(f"unknown exporter '{exporter}' (choose from {', '.join(EXPORTERS)})")
    if not isinstance(module, torch.nn.Module):
        raise OnnxfitError(f"expected a torch.nn.Module, got {type(module).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise OnnxfitError("example_inputs must be a tensor or a tuple of tensors")
    path = Path(path)
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise OnnxfitError(f"{path}: output directory '{path.parent}' does not exist")
    module.eval()
    names_in = list(input_names) if input_names else _forward_names(module, len(args))
    if len(names_in) != len(args):
        raise OnnxfitError(f"{len(names_in)} input names for {len(args)} example inputs")
    label = type(module).__name__
    try:
        with torch.no_grad():
            result = module(*args)
    except Exception as exc:  # noqa: BLE001 - the module is user code; wrong example shapes land here
        shapes = ", ".join("x".join(map(str, a.shape)) for a in args)
        raise OnnxfitError(f"{label} fails on inputs of shape {shapes}: {type(exc).__name__}: {_key_message(exc)}") from None
    count = len(result) if isinstance(result, (tuple, list)) else 1
    names_out = list(output_names) if output_names else (["output"] if count == 1 else [f"output_{i}" for i in range(count)])
    batched = [n for n, a in zip(names_in, args) if a.dim() >= 1] if dynamic_batch else []

    notes: list[str] = []
    export = _export_dynamo if exporter == "dynamo" else _export_torchscript
    with _quiet_exporter():
        model = export(module, args, names_in, names_out, batched, opset, label)
    if default_opset(model) != opset:
        model, why = _convert_opset(model, opset)
        if why:
            notes.append(f"the {exporter} exporter could not convert to opset {opset} ({why}); "
                         f"the model has opset {default_opset(model)}")
    model.ir_version = onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)

    passes = (["dynamic-batch"] if dynamic_batch else []) + ["fold-shapes"]
    pipeline = optimize_model(model, target="cpu", passes=passes)
    model = pipeline.model

    report = _verify(model, module, args, names_in, path)
    report.raise_if_failed()
    save_model(model, path)
    return ExportResult(path, exporter, default_opset(model), model.ir_version, _tensors(model.graph.input, model),
                        _tensors(model.graph.output, model), pipeline.reports, report, notes)


# ---------------------------------------------------------------------------------- export


def _export_dynamo(module, args, names_in, names_out, batched, opset, label) -> onnx.ModelProto:
    import torch

    batch = torch.export.Dim(BATCH_DIM)
    # One Dim object for every batched input: they share the batch size.
    dynamic = tuple({0: batch} if n in batched else None for n in names_in) if batched else None
    try:
        program = torch.onnx.export(module, args, dynamo=True, opset_version=opset, input_names=names_in,
                                    output_names=names_out, dynamic_shapes=dynamic, verbose=False)
    except Exception as exc:  # noqa: BLE001 - any exporter failure is the user's model; report its key line
        raise OnnxfitError(f"torch export (dynamo) of {label} failed: {_key_message(exc)}") from None
    return program.model_proto


def _export_torchscript(module, args, names_in, names_out, batched, opset, label) -> onnx.ModelProto:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset, input_names=names_in,
                              output_names=names_out, dynamic_axes={n: {0: BATCH_DIM} for n in batched} or None,
                              do_constant_folding=True, verbose=False)
        except Exception as exc:  # noqa: BLE001 - as in _export_dynamo
            raise OnnxfitError(f"torch export (torchscript) of {label} failed: {_key_message(exc)}") from None
    for warning in caught:
        # The tracer evaluates `if tensor:` once and records only the branch it took.
        if issubclass(warning.category, torch.jit.TracerWarning) and "Python boolean" in str(warning.message):
            raise OnnxfitError(
                f"torch export (torchscript) of {label} failed: data-dependent control flow at "
                f"{Path(warning.filename).name}:{warning.lineno}; the trace would keep only one branch "
                "(use torch.where, or the dynamo exporter to get a clear error)"
            )
    return onnx.load_from_string(buffer.getvalue())


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep exporter chatter off stdout (``--json`` owns it) and off the terminal.

    None of it is actionable, and failures are reported through the exception: the dynamo exporter
    prints progress, logs that it builds at opset 18 and converts down (the result reports the
    opset it got) and that torchvision ops are unavailable, and torch.export prints the traced
    graph to stderr when it fails; the TorchScript exporter warns that it is deprecated and, on
    failure, dumps its IR from C++ straight to file descriptor 1 (its logging switch is always on
    in torch 2.13), which only an fd-level redirect catches. Captured text goes to the debug log.
    """
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    chatter = io.StringIO()
    try:
        with tempfile.TemporaryFile() as sink, _fds_to(sink), warnings.catch_warnings(), \
                contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            try:
                yield
            finally:
                sys.stdout.flush()
                sink.seek(0)
                chatter.write(sink.read().decode(errors="replace"))
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if chatter.getvalue().strip():
            log.debug("exporter output:\n%s", chatter.getvalue())


@contextlib.contextmanager
def _fds_to(sink) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``sink`` (C++ writes bypass sys.stdout), then restore."""
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _key_message(exc: BaseException) -> str:
    """The line of an exporter exception that says what went wrong, plus where, if it says.

    The dynamo exporter wraps the real error in a page of advice; the real one is the first line
    under "## Exception summary" (``<class '...DispatchError'>: No ONNX function found for ...``),
    and torch.export names the user's line after "The following call raised this error:".
    """
    text = _ANSI.sub("", str(exc))
    lines = [line.strip() for line in text.splitlines()]
    key = next((line for line in lines if line), type(exc).__name__)
    if "## Exception summary" in lines:
        after = lines[lines.index("## Exception summary") + 1:]
        key = next((line for line in after if line), key)
        key = re.sub(r"^<class '[\w.]*?(\w+)'>: ", r"\1: ", key)
    if "The following call raised this error:" in lines:
        at = lines.index("The following call raised this error:")
        location = re.match(r'File "(.+)", line (\d+)', lines[at + 1]) if at + 1 < len(lines) else None
        if location:
            code = lines[at + 2] if at + 2 < len(lines) else ""
            key += f" (at {Path(location[1]).name}:{location[2]}: {code})"
    return key if len(key) <= _MESSAGE_LIMIT else key[: _MESSAGE_LIMIT - 3] + "..."


def _forward_names(module, count: int) -> list[str]:
    """The first ``count`` parameter names of ``forward`` (what a reader of the module knows)."""
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= count:
        return [p.name for p in params[:count]]
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def _convert_opset(model: onnx.ModelProto, opset: int) -> tuple[onnx.ModelProto, str | None]:
    """``model`` at ``opset`` by ONNX's version converter, or unchanged and the converter's reason."""
    try:
        return onnx.version_converter.convert_version(model, opset), None
    except (RuntimeError, onnx.checker.ValidationError) as exc:
        # "...BaseConverter.h:63: adapter_lookup: Assertion `false` failed: No Adapter To Version $17 for Pad"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return model, re.sub(r"^.*?failed: ", "", reason).replace("$", "")


def _tensors(values, model: onnx.ModelProto) -> dict[str, TensorInfo]:
    initializers = {t.name for t in model.graph.initializer}
    return {
        v.name: TensorInfo(v.name, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)).name,
                           proto_shape(v) or ())
        for v in values if v.name not in initializers
    }


# ---------------------------------------------------------------------------------- verify


def _verify(model: onnx.ModelProto, module, args, names_in: list[str], path: Path) -> VerifyReport:
    specs = model_inputs(model)
    shapes = {n: tuple(a.shape) for n, a in zip(names_in, args)}
    runtime = OrtRuntime(model)
    report = VerifyReport(str(path), reference="torch", runtimes=[runtime.name])
    report.checks.append(_parity(model, module, runtime, generate_inputs(specs, shapes), names_in))
    report.checks.append(contamination_check(model, runtime, specs, shapes, batch=CONTAMINATION_BATCH))
    return report


def _parity(model: onnx.ModelProto, module, runtime: OrtRuntime, inputs: dict[str, np.ndarray],
            names_in: list[str]) -> Check:
    """ONNX Runtime against the torch module on the same inputs.

    dynamic-batch may give a merged output a leading batch axis (``[H*W, 2]`` -> ``[1, H*W, 2]``):
    same elements in the same order, so the torch output is reshaped to the ONNX shape.
    """
    actual = runtime.run(inputs)
    expected = TorchRuntime(module, names_in, list(actual)).run(inputs)
    notes = []
    for name, value in expected.items():
        if value.shape != actual[name].shape and value.size == actual[name].size:
            notes.append(f"output '{name}': torch {list(value.shape)} compared as {list(actual[name].shape)}")
            expected[name] = value.reshape(actual[name].shape)
    comparisons = compare_outputs(actual, expected, atol=PARITY_ATOL)
    ok = all(c.ok for c in comparisons)
    worst = max(comparisons, key=lambda c: c.max_abs if c.max_abs is not None else np.inf)
    if ok:
        summary = f"ONNX Runtime matches torch (max abs error {worst.max_abs:.3g}, atol {PARITY_ATOL:g})"
    else:
        bad = next(c for c in comparisons if not c.ok)
        summary = f"output '{bad.name}' differs from torch: " + (
            bad.note or f"max abs error {bad.max_abs:.3g}, {bad.mismatches} of {bad.size} elements over tolerance")
    details = {"notes": notes, "comparisons": [
        {"label": f"{runtime.name} vs torch", "ok": ok, "outputs": [c.to_dict() for c in comparisons]}]}
    return Check("parity", ok, summary, details)


# ------------------------------------------------------------------------------ factories


def load_factory(spec: str) -> Callable[[], object]:
    """``"package.module:make_model"`` or ``"path/to/file.py:make_model"`` -> the callable.

    A dotted factory (``module:Model.build``) is followed attribute by attribute.
    """
    module_part, sep, factory_part = spec.rpartition(":")
    if not sep or not module_part or not factory_part:
        raise OnnxfitError(f"'{spec}': expected MODULE:FACTORY, e.g. my_models.py:build or my_pkg.models:build")
    source = _import(module_part)
    target = source
    for attr in factory_part.split("."):
        if not hasattr(target, attr):
            raise OnnxfitError(f"'{spec}': {module_part} has no attribute '{factory_part}'")
        target = getattr(target, attr)
    if not callable(target):
        raise OnnxfitError(f"'{spec}': {factory_part} is a {type(target).__name__}, not a callable")
    return target


def _import(name: str):
    looks_like_path = name.endswith(".py") or os.sep in name or "/" in name
    try:
        if looks_like_path:
            file = Path(name)
            if not file.is_file():
                raise OnnxfitError(f"{file}: no such file")
            unique = f"_onnxfit_factory_{abs(hash(str(file.resolve())))}"
            loader_spec = importlib.util.spec_from_file_location(unique, file)
            module = importlib.util.module_from_spec(loader_spec)
            # Registered like any import: dataclasses and pickling look classes up in sys.modules.
            sys.modules[unique] = module
            # The file may import its neighbours, as it would when run as a script.
            sys.path.insert(0, str(file.resolve().parent))
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[unique]
                raise
            finally:
                sys.path.remove(str(file.resolve().parent))
            return module
        return importlib.import_module(name)
    except OnnxfitError:
        raise
    except ModuleNotFoundError as exc:
        raise missing_extra(exc) or OnnxfitError(f"cannot import '{name}': no module named '{exc.name}'") from None
    except Exception as exc:  # noqa: BLE001 - user code failing at import is the user's to fix
        raise OnnxfitError(f"cannot import '{name}': {type(exc).__name__}: {_key_message(exc)}") from None


def build_module(spec: str):
    """Call the factory named by ``spec`` and return its ``nn.Module`` in eval mode."""
    factory = load_factory(spec)
    try:
        module = factory()
    except Exception as exc:  # noqa: BLE001 - the factory is user code
        raise OnnxfitError(f"'{spec}': the factory raised {type(exc).__name__}: {_key_message(exc)}") from None
    import torch

    if not isinstance(module, torch.nn.Module):
        raise OnnxfitError(f"'{spec}': the factory returned a {type(module).__name__}, not a torch.nn.Module")
    return module.eval()
