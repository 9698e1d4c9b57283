"""onnx-graphsurgeon with its logger silenced: it logs to stdout, which would corrupt ``--json``.

Imported by the packages that use graph-surgeon (optimizer, inspection) rather than by
``import onnxfit``, which stays light.
"""

import onnx_graphsurgeon as gs

gs.logger.G_LOGGER.severity = gs.logger.G_LOGGER.CRITICAL + 10
gs.logger.G_LOGGER.colors = False
