# Set-up is part of every target: a fresh machine needs only python3 (with venv) and make.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: sim run test bench proto

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

sim: $(STAMP)
	$(VENV)/bin/pagetide sim

test: $(STAMP)
	PYTHON=$(CURDIR)/$(VENV)/bin/python bash proto/check.sh
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/pagetide bench-host

proto: $(STAMP)
	PYTHON=$(CURDIR)/$(VENV)/bin/python bash proto/generate.sh
