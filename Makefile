# Atelier: two commands on a fresh machine.
#   make run   installs, starts everything on the embedded default, runs the sample images, keeps serving
#   make test  installs and runs the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVICES := uploader tagger router stylizer exporter status
TOOLS := client devtools workshop
PACKAGES := -e 'shared[images]' $(foreach name,$(SERVICES),-e services/$(name)) $(foreach name,$(TOOLS),-e tools/$(name))
SOURCES := shared/atelier_shared $(foreach name,$(SERVICES),services/$(name)/atelier_$(name)) \
	$(foreach name,$(TOOLS),tools/$(name)/atelier_$(name))
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test-tools run demo test test-fast lint proto topology models bench bench-runtime bench-models bench-style bench-failover bench-reliability bench-status bench-gpu compose-config images clean

install: $(STAMP)

$(STAMP): constraints.txt requirements-dev.txt shared/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned: these machines' pip finds 2.13.0 as a CPU wheel on disk (a looser spec would pull a
	# CUDA build from PyPI, several GB). Elsewhere, PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0 $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

run: install
	$(BIN)/atelier local

demo: install
	$(BIN)/atelier local --demo

test: install lint test-tools
	$(BIN)/pytest -q --durations=15

# Programs the tests drive, from Debian's packages (no downloads): Chromium and its ChromeDriver for
# the studio's browser test, Prometheus and promtool for the dashboards' and alerts' expressions.
# Without recommends: no node exporter; the tests start their own Prometheus on a free port.
TEST_TOOLS := /usr/bin/chromium /usr/bin/chromedriver /usr/bin/prometheus /usr/bin/promtool
test-tools: $(TEST_TOOLS)

$(TEST_TOOLS) &:
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver prometheus'

test-fast: install test-tools
	$(BIN)/pytest -q -m "not e2e"

lint: install
	$(BIN)/ruff check shared services tools tests bench
	$(BIN)/ruff format --check shared services tools tests bench
	$(BIN)/mypy $(SOURCES)

proto: install
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=shared/atelier_shared/_proto \
		--pyi_out=shared/atelier_shared/_proto proto/atelier/v1/events.proto

# The README's topic table, from what each service declares it consumes and publishes.
topology: install
	$(BIN)/python -m atelier_devtools.topology --write README.md

models: install
	$(BIN)/atelier models make-defaults

bench: install
	$(BIN)/python -m bench.tagger
	$(BIN)/python -m bench.codecs
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.preview

bench-runtime: install
	$(BIN)/python -m bench.runtime

bench-models: install
	$(BIN)/python -m bench.models

bench-style: install
	$(BIN)/python -m bench.style

bench-failover: install
	$(BIN)/python -m bench.failover

bench-reliability: install
	$(BIN)/python -m bench.reliability

bench-status: install
	$(BIN)/python -m bench.status

# Runs on a lent GPU machine's own Python (PyTorch with CUDA, no package registry), so no install
# step: the venv's Python where one exists, else $(PYTHON). BENCH_GPU_ARGS e.g. "--out DIR --budget 300".
bench-gpu:
	PYTHONPATH=services/stylizer $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m bench.gpu $(BENCH_GPU_ARGS)

compose-config:
	docker compose config --quiet

# The images Kubernetes runs (deploy/), built from the repository root; push them, then pin each by
# digest in your overlay. `make images TAG=dev` makes the ones deploy/overlays/dev names.
REGISTRY ?= registry.example.com/atelier
TAG ?= 0.1.0
images:
	set -e; for name in $(SERVICES); do docker build -t $(REGISTRY)/$$name:$(TAG) -f services/$$name/Dockerfile .; done
	docker build -t $(REGISTRY)/workshop:$(TAG) -f tools/workshop/Dockerfile .

clean:
	rm -rf $(VENV) .atelier out .pytest_cache .mypy_cache .ruff_cache
