# Storetag: `make demo` and `make test` are all a newcomer on a fresh Debian machine needs to run.
# Every target installs what it uses, once; a second run finds everything in place and goes straight on.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages: what the tests need (a real Redis, a real Chromium) and what the bench adds (wrk).
TEST_PACKAGES := redis-server chromium
BENCH_PACKAGES := $(TEST_PACKAGES) wrk
# apt-get runs as root: directly when we are root, through sudo when it is there, else it fails and says why.
SUDO := $(shell if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then echo sudo; fi)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600

# $(call apt_install,PACKAGES): installs those of PACKAGES whose program is missing; silent when none is.
define apt_install
	@missing=""; \
	for pkg in $(1); do \
	  case "$$pkg" in \
	    chromium) test -x /usr/bin/chromium || missing="$$missing $$pkg" ;; \
	    *) command -v "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg" ;; \
	  esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "system-deps: installing$$missing"; \
	  $(APT_GET) update; \
	  $(APT_GET) install -y --no-install-recommends $$missing; \
	fi
endef

.PHONY: help demo test lint bench bench-recs bench-push fmt system-deps bench-deps venv $(VENV) clean

help:
	@echo "make demo   run the demo shop on http://127.0.0.1:8000 (API on :8001); needs no Redis"
	@echo "make test   ruff, mypy and pytest (installs Redis and Chromium from apt when missing)"
	@echo "make bench  events load vs a floor app, tag size and main-thread time, Redis memory per visitor"
	@echo "make bench-recs  recommendations: slot server time, quality on a synthetic shop"
	@echo "make bench-push  web push: pushes/s of one worker against pywebpush's synchronous webpush()"
	@echo "make fmt    format and autofix with ruff"

# The virtualenv, reinstalled whenever pyproject.toml changes.
$(VENV) venv: $(STAMP)

# Debian's own python3 has no venv module until python3-venv is installed.
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/pip ]; then \
	  $(PYTHON) -c 'import ensurepip' 2>/dev/null || { $(APT_GET) update && $(APT_GET) install -y python3-venv; }; \
	  echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

system-deps:
	$(call apt_install,$(TEST_PACKAGES))

bench-deps:
	$(call apt_install,$(BENCH_PACKAGES))

demo: $(STAMP)
	$(BIN)/storetag demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# pytest exits 5 when it collects no test: that fails this target like any other failure.
test: lint system-deps
	$(BIN)/pytest -q

# Everything in bench/ (events load with 4, 54 and 1,004 rules, tag size and main-thread time, Redis memory per
# visitor) into bench/RESULTS.md, in about 5 minutes; `make bench BENCH_FLAGS=--quick` takes about 2.
bench: $(STAMP) bench-deps
	$(BIN)/python bench/suite.py $(BENCH_FLAGS)

bench-recs: $(STAMP) bench-deps
	$(BIN)/python bench/recs_speed.py
	$(BIN)/python bench/recs_quality.py

bench-push: $(STAMP) bench-deps
	$(BIN)/python bench/push_throughput.py

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache bench/out
