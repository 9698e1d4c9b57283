"""Exporters: turn torch modules (and EFM3 files) into ONNX models.

Submodules are imported on use, not here, so that ``import onnxfit`` never pulls in torch:
``onnxfit.exporters.samples`` builds the small sample models committed under ``weights/``.
"""
