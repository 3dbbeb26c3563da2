# Set-up and entry points. Everything installs into .venv in the checkout,
# so a fresh machine needs only python3 (>= 3.11), pip, a C compiler and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.fedzo-installed

.PHONY: install browser test test-all demo bench clean

$(STAMP): pyproject.toml setup.py csrc/fedzo_kernel.c csrc/fedzo_forward.c csrc/fedzo_kernel.h csrc/build_kernel.py
	$(PYTHON) -m venv $(VENV)
	@echo "installing fedzo and its test extras into $(VENV) (a minute or more the first time) ..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[test,ray]' || { \
	    echo "Ray did not install (no wheel for this platform?): installing without it; the Ray tests will skip" >&2; \
	    $(PY) -m pip install -e '.[test]'; }
	touch $(STAMP)

install: $(STAMP)

# The comparison page's tests drive Debian's headless Chromium (tests/browser.py):
# installed here when missing and apt can (as root); elsewhere those tests skip and say why.
browser:
	@if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then \
	    if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	        echo "installing chromium and chromium-driver for the browser tests (apt) ..."; \
	        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	            || echo "could not install chromium and chromium-driver; the browser tests will skip" >&2; \
	    else \
	        echo "no chromium/chromedriver and no root apt-get: the browser tests will skip" >&2; \
	    fi; \
	fi

# The default test run: fast tests only (slow ones are marked and run by test-all).
test: $(STAMP) browser
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP) browser
	$(PY) -m pytest -q

demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/fedzo simulate --out runs/demo --with-null

clean:
	rm -rf $(VENV) build *.egg-info edge/kernel/_kernel_c*.so edge/kernel/_kernel_c.c edge/kernel/BUILD_FAILED.txt dist
