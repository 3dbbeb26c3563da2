# Set-up and entry points. Everything installs into .venv in the checkout,
# so a fresh machine needs only python3 (>= 3.11), pip, a C compiler and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.fedzo-installed

.PHONY: install test test-all demo bench clean

$(STAMP): pyproject.toml setup.py csrc/fedzo_kernel.c csrc/fedzo_kernel.h csrc/build_kernel.py
	$(PYTHON) -m venv $(VENV)
	@echo "installing fedzo and its test extras into $(VENV) (a minute or more the first time) ..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The default test run: fast tests only (slow ones are marked and run by test-all).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/fedzo simulate --out runs/demo --with-null

clean:
	rm -rf $(VENV) build *.egg-info edge/kernel/_kernel_c*.so edge/kernel/_kernel_c.c edge/kernel/BUILD_FAILED.txt dist
