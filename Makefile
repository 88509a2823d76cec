# The two commands of the README: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATABASES ?= sqlite postgres mysql
LOCALES ?= fr de es
PYTEST_ARGS ?= -q -p no:cacheprovider
PORT ?= 8000
export NO_MKDOCS_2_WARNING := 1

.PHONY: demo serve test lint types docs test-suite test-versions package messages compilemessages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[redis]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	scripts/system_deps.sh
	$(BIN)/python -m pip install -q -e '.[redis]' --group dev
	touch $@ $(VENV)/.demo-installed

## The example project's main job, on SQLite with no other service.
demo: $(VENV)/.demo-installed
	cd example && ../$(BIN)/python manage.py demo

## Serve the example project on http://127.0.0.1:$(PORT)/ (`make serve PORT=8001`;
## `make demo` prints the admin password).
serve: $(VENV)/.demo-installed
	cd example && ../$(BIN)/python manage.py createcachetable && \
		../$(BIN)/python manage.py migrate --verbosity 0 && \
		../$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## Lint, types, docs and the whole suite on every reachable database.
test: lint types docs test-suite

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(VENV)/.dev-installed
	$(BIN)/mypy

# No --quiet: it hides warnings from --strict, which then lets them pass.
docs: $(VENV)/.dev-installed
	$(BIN)/mkdocs build --strict --site-dir build/site

test-suite: $(VENV)/.dev-installed
	$(BIN)/python scripts/test_databases.py $(DATABASES) -- $(PYTEST_ARGS)

## The suite on Django 6.0 and 6.1 (Pythons 3.12 and 3.13 where the machine has them).
test-versions:
	scripts/test_versions.sh

## Retake the browser tests' screenshots and copy them into the documentation's images.
.PHONY: screenshots
screenshots: $(VENV)/.dev-installed
	rm -rf build/screenshots
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/browser
	cp build/screenshots/*.png docs/img/

## Build the sdist and the wheel, check them, and run the suite against the installed wheel.
package: $(VENV)/.dev-installed
	scripts/check_package.sh

## Update the translation catalogues from the source (needs GNU gettext's xgettext), then
## compile them (`compilemessages`: needs msgfmt).
messages: $(VENV)/.dev-installed
	cd src/keel && ../../$(BIN)/django-admin makemessages --no-obsolete --no-location $(addprefix --locale ,$(LOCALES))

compilemessages: $(VENV)/.dev-installed
	cd src/keel && ../../$(BIN)/django-admin compilemessages

## Benchmarks beside the peers and the systems keel replaces (PostgreSQL, MariaDB and Redis on loopback):
## builds .venv-bench, regenerates docs/performance.md and docs/img/bench-*.png.
.PHONY: bench
bench:
	scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-django* .venv-bench .venv-wheel build dist site .pytest_cache .mypy_cache .ruff_cache
