# vendgate: the two commands are `make demo` and `make test`; both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install demo test test-fast lint format bench wheel-check clean

help:
	@echo "make demo     run the demo (creates .venv and installs on first use)"
	@echo "make test     run every test tier that this machine can run"
	@echo "make test-fast  only the pure tier (no broker, no database, no pty)"
	@echo "make lint     ruff and mypy"
	@echo "make bench    run the benchmarks and print their figures"
	@echo "make wheel-check  build the wheel, install it in a fresh venv, migrate and run the demo"

install: $(STAMP)

# Reinstall only when the packaging changes; the install is editable, so code edits need nothing.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing vendgate and its dev tools into $(VENV) (first run takes a minute)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/vendgate demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not amqtt and not mosquitto and not postgres and not pty" $(PYTEST_ARGS)

# mypy cannot follow setuptools' editable-install finder, so it reads a tree of symlinks that
# mirrors the installed namespace (vendgate/edge -> edge/, ...).
TYPECHECK := .typecheck/vendgate
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@rm -rf .typecheck && mkdir -p $(TYPECHECK)
	@for f in vendgate/*; do ln -s ../../$$f $(TYPECHECK)/; done
	@ln -s ../../edge $(TYPECHECK)/edge; ln -s ../../cloud $(TYPECHECK)/cloud
	@ln -s ../../protocol $(TYPECHECK)/protocol; ln -s ../../firmware-sim $(TYPECHECK)/boardsim
	cd .typecheck && ../$(BIN)/mypy -p vendgate
	cd .typecheck && ../$(BIN)/lint-imports --config ../pyproject.toml --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

wheel-check: $(STAMP)
	bash .ci/wheel-check

clean:
	rm -rf $(VENV) .typecheck .pytest_cache .mypy_cache .ruff_cache build *.egg-info
