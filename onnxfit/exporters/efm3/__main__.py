"""``python -m onnxfit.exporters.efm3 make-sample DIR``: write the sample files."""

from onnxfit.exporters.efm3.sample import main

raise SystemExit(main())
