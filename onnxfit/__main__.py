from onnxfit.cli import main

main()
