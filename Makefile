# Bright Run — two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: run demo test venv lint schema clean-var

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-ml.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -r requirements-ml.txt
	@touch $(STAMP)

## Set everything up on embedded defaults (SQLite, local files, filesystem broker) and start
## web + worker + beat together. Ctrl-C stops all of them.
run: venv
	@bash scripts/run.sh

## `make run` plus the demo workspace (manage.py load_demo): hand-written conversations in every review state,
## a training file, a dataset and a finished tiny-model training job. No Anthropic key needed; idempotent.
demo: venv
	@DEMO=1 bash scripts/run.sh

## Set everything up (PostgreSQL, Redis, S3 server, Chromium) and run the whole suite.
test: venv
	@bash scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .

schema: venv
	DJANGO_SETTINGS_MODULE=brightrun.settings_test $(PY) manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml
