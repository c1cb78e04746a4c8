# The project's commands. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DJANGO_SETTINGS_MODULE ?= config.settings.base
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/crm

.PHONY: install demo test test-rabbitmq fuzz lint worker beat web dev bench migrate deploy-smoke

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --verbosity 0

## Run the main job: a demo campaign end to end (embedded SQLite + in-process worker by default).
demo: migrate
	$(PY) manage.py demo

## Run the whole test suite against PostgreSQL at $DATABASE_URL (default: local crm database).
test: install
	@DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(PY) -m config.check_postgres
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(VENV)/bin/pytest $(PYTEST_ARGS)

## The integration suite (real workers: the pipeline, worker deaths) on RabbitMQ.
test-rabbitmq: install
	$(MAKE) test CELERY_TEST_BROKER_URL="$${CELERY_TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672//}" \
		PYTEST_ARGS="-m integration tests/integration $(PYTEST_ARGS)"

## Fuzz every API operation with schemathesis, FUZZ_EXAMPLES (100) examples each:
## 10-20 minutes. The test suite runs the same test with 15.
FUZZ_EXAMPLES ?= 100
fuzz: install
	@DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(PY) -m config.check_postgres
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" SCHEMA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(VENV)/bin/pytest tests/api/test_schema_fuzz.py -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## The processes a deployment runs: one web, any number of workers, exactly one beat.
web: migrate
	$(VENV)/bin/gunicorn config.wsgi:application --bind 0.0.0.0:8000 --access-logfile -

## The web process for development: Django's runserver, reloading on every change.
dev: migrate
	$(PY) manage.py runserver 0.0.0.0:8000

worker: install
	$(VENV)/bin/celery -A config worker --loglevel INFO --queues $$($(PY) -c 'from config.queues import ALL_QUEUES; print(ALL_QUEUES)')

beat: install
	$(VENV)/bin/celery -A config beat --loglevel INFO

## Install the wheel outside the checkout and run it as production does: migrate,
## gunicorn, two workers, beat, a campaign through the API (scripts/deploy_smoke.py).
deploy-smoke:
	$(PYTHON) scripts/deploy_smoke.py

bench: migrate
	$(PY) manage.py bench $(BENCH_ARGS)
