# Two commands for a new user: `make run` (the portal with its products on the real sample
# data) and `make test` (the whole suite against real PostGIS, Redis and a Celery worker).
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.SILENT:

PY      := .venv/bin/python
VAR     := var
HOST    ?= 127.0.0.1
PORT    ?= 8000
export SHARED_DATA_DIR ?= $(abspath ../shared/data)
CATALOG := $(abspath $(SHARED_DATA_DIR)/../catalog)
APT_PACKAGES := postgresql-15 postgresql-15-postgis-3 gdal-bin redis-server chromium gettext fonts-noto-cjk libudunits2-0

.PHONY: setup system services venv assets db run ingest stop test test-fast bench lint clean

setup: system services venv assets db  ## install what is missing, start services, migrate (idempotent, no server)

system:
	missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)
	command -v npm >/dev/null || missing="$$missing npm"
	command -v python3.11 >/dev/null || missing="$$missing python3.11 python3.11-venv"
	if [ -n "$$(echo $$missing)" ]; then
	  echo "installing Debian packages:" $$missing
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null
	fi

services:
	if ! pg_isready -q -h 127.0.0.1 -p 5432; then
	  echo "starting PostgreSQL"; pg_ctlcluster --skip-systemctl-redirect 15 main start
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	fi
	if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	  echo "starting Redis"; mkdir -p /var/lib/redis /var/log/redis
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/portal.log
	fi

venv: .venv/.installed
.venv/.installed: requirements.txt requirements-dev.txt
	echo "installing Python packages into .venv"
	[ -x $(PY) ] || python3.11 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

assets: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	echo "installing front-end libraries from the npm registry"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

db:
	$(PY) -m portal.dbsetup
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py compilemessages -v 0 --ignore=.venv --ignore=node_modules
	$(PY) manage.py collectstatic --noinput -v 0

run: setup  ## the portal on the real sample data, served at http://$(HOST):$(PORT)/
	mkdir -p $(VAR)
	echo "[run 1/10] importing the catalog records"
	$(PY) manage.py import_records $(CATALOG)/*.json
	echo "[run 2/10] ingesting every real data folder (per-file progress below; files already loaded are skipped)"
	$(MAKE) --no-print-directory ingest
	echo "[run 3/10] generating ET fusion (et_fusion; stages below; skipped when already published)"
	$(PY) manage.py generate et_fusion --if-missing
	echo "[run 4/10] generating soil moisture (sm_mlda)"
	$(PY) manage.py generate sm_mlda --if-missing
	echo "[run 5/10] generating freeze/thaw (freeze_thaw)"
	$(PY) manage.py generate freeze_thaw --if-missing
	echo "[run 6/10] generating 1 km soil moisture (sm_1km)"
	$(PY) manage.py generate sm_1km --if-missing
	echo "[run 7/10] generating terrestrial water storage (tws_rec)"
	$(PY) manage.py generate tws_rec --if-missing
	echo "[run 8/10] building the cube stores of the published grids"
	$(PY) manage.py build_cubes
	$(MAKE) --no-print-directory stop
	echo "[run 9/10] starting the Celery workers (one per queue: generation, subsets, housekeeping with beat) and the web server"
	# each takes its queue's concurrency and time limits from settings (QUEUE_<ROLE>_*, portal/celery.py);
	# a second host runs the same lines without --beat (README: Scaling out)
	.venv/bin/celery -A portal worker -Q $${QUEUE_GENERATION:-generation} -n generation@%h --detach --loglevel=INFO \
	  --pidfile=$(VAR)/celery-generation.pid --logfile=$(VAR)/celery-generation.log
	.venv/bin/celery -A portal worker -Q $${QUEUE_SUBSETS:-subsets} -n subsets@%h --detach --loglevel=INFO \
	  --pidfile=$(VAR)/celery-subsets.pid --logfile=$(VAR)/celery-subsets.log
	.venv/bin/celery -A portal worker -Q $${QUEUE_HOUSEKEEPING:-housekeeping},$${QUEUE_DEFAULT:-default} -n housekeeping@%h \
	  --detach --loglevel=INFO --beat --schedule $(VAR)/celerybeat-schedule \
	  --pidfile=$(VAR)/celery-housekeeping.pid --logfile=$(VAR)/celery-housekeeping.log
	.venv/bin/gunicorn -c portal/gunicorn.conf.py portal.wsgi --bind $(HOST):$(PORT) --daemon --capture-output \
	  --pid $(VAR)/gunicorn.pid --access-logfile $(VAR)/access.log --error-logfile $(VAR)/gunicorn.log
	for i in $$(seq 30); do curl -sf -o /dev/null http://$(HOST):$(PORT)/ && break; sleep 1; done
	curl -sf -o /dev/null http://$(HOST):$(PORT)/
	echo "[run 10/10] making sure the admin account exists"
	$(PY) manage.py ensure_admin --password-file $(VAR)/admin-password
	echo "The portal is up at http://$(HOST):$(PORT)/ (admin: http://$(HOST):$(PORT)/admin/, user 'admin', password in $(VAR)/admin-password: $$(cat $(VAR)/admin-password))"
	echo "Logs (500s with their traceback): $(VAR)/gunicorn.log, Celery: $(VAR)/celery-<queue>.log; health: http://$(HOST):$(PORT)/health/; stop both with 'make stop'."

ingest:  ## every real folder of SHARED_DATA_DIR: point data loaded, grids registered (same files are skipped)
	$(PY) manage.py ingest cardamom $(SHARED_DATA_DIR)/cardamom_fluxval
	$(PY) manage.py ingest reddyproc $(SHARED_DATA_DIR)/reddyproc_DE-Tha
	$(PY) manage.py ingest ecostress $(SHARED_DATA_DIR)/ecov002_calval_tables
	$(PY) manage.py ingest ismn $(SHARED_DATA_DIR)/ismn_testdata
	$(PY) manage.py ingest basins $(SHARED_DATA_DIR)/lehmannfa_basin_water_budget
	$(PY) manage.py ingest ascat $(SHARED_DATA_DIR)/pytesmo_testdata
	$(PY) manage.py ingest grid $(SHARED_DATA_DIR)/gldas_testdata $(SHARED_DATA_DIR)/xarray_data \
	  $(SHARED_DATA_DIR)/ecmwf_models_testdata $(SHARED_DATA_DIR)/xclim_era5_cities $(SHARED_DATA_DIR)/modis_lsttools

stop:  ## stop the web server and the Celery workers started by `make run`
	for pidfile in $(VAR)/gunicorn.pid $(VAR)/celery.pid $(VAR)/celery-generation.pid $(VAR)/celery-subsets.pid \
	  $(VAR)/celery-housekeeping.pid; do
	  if [ -f $$pidfile ]; then
	    pid=$$(cat $$pidfile); kill $$pid 2>/dev/null || true
	    for i in $$(seq 20); do kill -0 $$pid 2>/dev/null || break; sleep 0.5; done
	    rm -f $$pidfile
	  fi
	done

# The suite runs on TEST_WORKERS processes (pytest-xdist; 0: in this one), each with a test database, broker,
# cache prefix and data folder of its own; a test file runs whole on one of them (tests/conftest.py).
TEST_WORKERS ?= 2
test: setup  ## the whole suite against real PostGIS, Redis, Celery workers and headless Chromium
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=20

test-fast: venv  ## the tests that need no database, server or worker (the `fast` mark; about half a minute)
	$(PY) -m pytest -m fast -q

bench: setup  ## benchmarks in tests/bench (ratios against a baseline taken in the same run)
	$(PY) -m pytest tests/bench -p no:cacheprovider -q -s

lint: venv  ## ruff (lint and format), the import contracts (.importlinter: layers, no cycles) and mypy on the pure packages
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache
	.venv/bin/mypy

clean: stop
	rm -rf $(VAR) staticfiles
