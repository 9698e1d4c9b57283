# Two entry points for a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[torch,test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/onnxfit optimize weights/ -o build/demo --target coreml

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build
