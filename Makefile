# Two entry points for a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0

# The real OpenVINO EP ships as its own onnxruntime build (onnxruntime-openvino), which cannot share
# a venv with onnxruntime: the partition-fidelity tests against it run in a second venv.
OV_VENV := .venv-openvino
OV_PY   := $(OV_VENV)/bin/python

.PHONY: demo test test-openvino install clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q --only-binary=onnxsim -e '.[torch,test,simplify]'
	touch $@

install: $(VENV)/.installed

$(OV_VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(OV_VENV)
	$(OV_PY) -m pip install -q --upgrade pip
	$(OV_PY) -m pip install -q onnxruntime-openvino==1.24.1 onnx onnx-graphsurgeon numpy typer rich platformdirs filelock xxhash pytest hypothesis
	$(OV_PY) -m pip install -q -e . --no-deps
	touch $@

# A few lines per sample model; `make demo V=1` prints each pass and the op counts as tables.
demo: $(VENV)/.installed
	$(VENV)/bin/onnxfit $(if $(V),-v) optimize weights/ -o build/demo --target coreml --ort-version 1.25

test: $(VENV)/.installed $(OV_VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider
	$(OV_PY) -m pytest -q -p no:cacheprovider -m openvino_ep tests/targets

test-openvino: $(OV_VENV)/.installed
	$(OV_PY) -m pytest -q -p no:cacheprovider -m openvino_ep tests/targets

clean:
	rm -rf $(VENV) $(OV_VENV) build
