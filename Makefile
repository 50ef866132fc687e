# LinkPoint: `make run` starts the product on SQLite; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two pytest workers (this machine has two cores); each gets its own test databases.
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed
# The demo: embedded SQLite, the sandbox emulators, development static files.
DEMO := SANDBOX_ENABLED=1 DEBUG=1

.PHONY: run prod test install migrate seed lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(DEMO) $(BIN)/python manage.py migrate --noinput
	$(DEMO) $(BIN)/python manage.py migrate --noinput --database sandbox

seed: migrate
	$(DEMO) $(BIN)/python manage.py seed_demo

# Web server and the django-q2 worker together; Ctrl-C stops both.
run: seed
	$(DEMO) $(BIN)/python manage.py rundemo

# The production topology on one machine: PostgreSQL, Redis, gunicorn, 2 qclusters (README).
prod: install
	bin/prod-local

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/sync_bench.py --items 1000

clean:
	rm -rf $(VENV) db.sqlite3 sandbox.sqlite3 test-artifacts
