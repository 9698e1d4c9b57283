"""EFM3: the FaceX MobileFaceNet weight file. Writer, validating reader, numpy reference engine.

EFM3 is the self-describing fp32 weight file that the FaceX C engine (``facex_mfn.c``) loads;
its contract is docs/efm3.md (the byte layout, the architectures, the tensor order; the sample
files are described in weights/README.md). Everything here is torch-free, so reading,
inspecting and running a file never imports torch. This package and the torch model
(:mod:`onnxfit.exporters.mobilefacenet`) are both built from
:mod:`onnxfit.exporters.mobilefacenet_arch`, and the torch model imports nothing from here.

Modules:

1. :mod:`onnxfit.exporters.mobilefacenet_arch` (re-exported here): :data:`ARCHS`,
   :class:`Arch`, :func:`plan`: the four sizes and the layer list in file order.
2. :mod:`.fileformat`: :func:`efm3_bytes` / :func:`write_efm3` (tensors named as in the torch
   model's state_dict -> file) and :func:`parse_efm3` / :func:`read_efm3` (file ->
   :class:`Efm3File`, refusing anything the contract does not allow with an ``OnnxfitError``).
3. :mod:`.sources`: :func:`tensors_from_onnx` and :func:`tensors_from_state_dict` take the
   tensors from an ONNX MobileFaceNet or a torch state_dict by structure, not by name;
   :func:`export_efm3` does the ``onnxfit export efm3`` command.
4. :mod:`.engine`: :class:`Efm3Engine` runs a file with numpy the way the C engine does.
5. :mod:`.verify`: :func:`verify_efm3` compares the engine with ONNX Runtime or torch;
   :func:`inspect_efm3` is ``onnxfit efm3 inspect``.
6. :mod:`.sample`: :func:`make_sample` writes the sample files
   (``python -m onnxfit.exporters.efm3 make-sample DIR``).

Choices where the contract is silent (keep the C engine and this module in step):

1. Channel rounding: ``max(8, floor(c * width / 8 + 0.5) * 8)``, i.e. round half away from
   zero like C ``roundf``, not Python's ``round()`` (half to even). The four shipped widths
   never hit a tie (nano 24/48/184, tiny 32/72/280, standard 56/112/464, xs 88/176/688), so
   both rules agree on them; the choice only matters for a custom width.
2. Stage output channels: stage 1 outputs the stem channels, every later stage the block
   channels (stages 3-5 included); hidden channels = block input channels x t.
3. PReLU slopes are per channel, stored ``[Cout]``. A source model with one shared slope
   (``nn.PReLU()``) is written with the slope repeated per channel; ONNX's ``[C,1,1]``
   slope initializers are flattened.
4. The GDConv kernel must equal the feature map size that the arch leaves of a 112x112 input
   (7 for the shipped stride schedule); the reader refuses headers where it does not, since
   the engine's output would then not be 1x1.
5. BatchNorm folding happens in fp32 (as in the C engine). A source that has no BatchNorm
   after a conv (torch.onnx.export in eval mode with constant folding folds BN into the conv's
   weight and bias) is written as an identity BN: gamma = 1, beta = conv bias (0 without one),
   mean = 0, var = fp32(1 - 1e-5) = 0.99999. In fp32, ``0.99999 + 1e-5 == 1.0`` exactly, so the
   folded scale is exactly 1 and the folded bias exactly the conv bias. A conv bias before a
   real BN goes into the mean (``mean - bias``); a BN eps other than 1e-5 goes into the
   variance (``var + eps - 1e-5``). torch state_dicts do not record eps: 1e-5 (torch's
   default) is assumed unless a module is given, whose BatchNorm eps values are used.
6. The embedding is L2-normalised as ``x / max(||x||, 1e-12)`` (torch ``F.normalize``), so the
   engine, the torch model and its ONNX export all return unit vectors.
7. The JSON copy must parse, be an object with the contract's keys, and agree with the
   header; the arch name and width are taken from it (the header holds neither).
8. Header fields beyond the contract's list are checked for sanity: odd stem kernel, strides
   1 or 2, non-zero channels and t/n for used stages, zero padding and unused stage records.
"""

from onnxfit.exporters.efm3.engine import Efm3Engine
from onnxfit.exporters.efm3.fileformat import (
    HEADER_SIZE,
    HEADER_VERSION,
    MAGIC,
    MAX_STAGES,
    VERSION,
    Efm3File,
    efm3_bytes,
    parse_efm3,
    read_efm3,
    write_efm3,
)
from onnxfit.exporters.efm3.sample import main, make_sample
from onnxfit.exporters.efm3.sources import (
    IDENTITY_VAR,
    export_efm3,
    tensors_from_onnx,
    tensors_from_state_dict,
)
from onnxfit.exporters.efm3.verify import (
    TOLERANCE,
    Efm3Verification,
    face_like_inputs,
    inspect_efm3,
    verify_efm3,
)
from onnxfit.exporters.mobilefacenet_arch import (
    ARCHS,
    BN_EPS,
    INPUT_SIZE,
    L2_EPS,
    Arch,
    Block,
    Layer,
    Plan,
    Stage,
    make_arch,
    plan,
    scale_channels,
    tensor_specs,
)

__all__ = [
    "ARCHS",
    "BN_EPS",
    "HEADER_SIZE",
    "HEADER_VERSION",
    "IDENTITY_VAR",
    "INPUT_SIZE",
    "L2_EPS",
    "MAGIC",
    "MAX_STAGES",
    "TOLERANCE",
    "VERSION",
    "Arch",
    "Block",
    "Efm3Engine",
    "Efm3File",
    "Efm3Verification",
    "Layer",
    "Plan",
    "Stage",
    "efm3_bytes",
    "export_efm3",
    "face_like_inputs",
    "inspect_efm3",
    "main",
    "make_arch",
    "make_sample",
    "parse_efm3",
    "plan",
    "read_efm3",
    "scale_channels",
    "tensor_specs",
    "tensors_from_onnx",
    "tensors_from_state_dict",
    "verify_efm3",
    "write_efm3",
]
