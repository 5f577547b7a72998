# teamhub: `make demo` runs it, `make test` tests it. `make setup` installs everything (idempotent).
SHELL := /bin/bash
VENV := .venv/bin
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV):$(CURDIR)/node_modules/.bin:$(PATH)
PYTEST := $(VENV)/python -m pytest
# The demo runs the operator's starting point plus the demo accounts (whose passwords README publishes).
VALUES ?= config/values.yaml config/demo/values.yaml
PORT ?= 8000

.PHONY: setup setup-demo test lint test-unit test-chart test-integration test-browser test-cluster test-containers test-bundle screenshots demo schema bench

setup:
	@scripts/setup.sh

# Only what `make demo` needs: the hub's Python venv and the Node proxy (no apt, no Go builds).
setup-demo:
	@scripts/setup.sh --demo

# Every tier in one pytest run (one summary line), after lint. Tiers can also run alone below.
test: setup lint .venv-nca/stamp
	$(PYTEST) tests

lint: .venv-checkov/stamp
	$(VENV)/ruff check hub-image tests scripts benchmarks
	$(VENV)/lint-imports --no-cache  # the package's layers (pyproject.toml [tool.importlinter]): an upward import fails
	$(VENV)/yamllint -s config chart/values.yaml chart/Chart.yaml hub-image/teamhub/schema
	$(VENV)/shellcheck -x scripts/*.sh scripts/lib/*.sh .ci/run
	$(VENV)/hadolint hub-image/Dockerfile dockerfiles/*/Dockerfile
	$(VENV)/yamllint -s dockerfiles/images.yaml
	$(VENV)/teamhub schema --check
	$(VENV)/python tools/checkov/scan.py

# checkov has its own venv: it requires packaging<24, the hub pins a newer one. Rebuilt when the lock changes.
.venv-checkov/stamp: requirements-checkov.txt
	python3 -m venv .venv-checkov
	.venv-checkov/bin/pip install -q --no-deps -r requirements-checkov.txt
	touch $@

# network-config-analyzer, for the chart tier's NetworkPolicy test: its own venv, it pins PyYAML 6.0.2.
.venv-nca/stamp: requirements-nca.txt
	python3 -m venv .venv-nca
	.venv-nca/bin/pip install -q --no-deps -r requirements-nca.txt
	touch $@

test-unit:
	$(PYTEST) tests/unit

test-chart: .venv-nca/stamp
	$(PYTEST) tests/chart

test-integration:
	$(PYTEST) tests/integration

test-browser:
	$(PYTEST) tests/browser

# A real control plane (etcd, kube-apiserver, controller manager, scheduler; kwok nodes), built by setup.
test-cluster:
	$(PYTEST) tests/cluster

# The project's images built with buildah and run by a real kubelet (containerd, runc) on the same control plane.
test-containers:
	$(PYTEST) tests/containers

# Air-gapped bundles: real registries (Debian's docker-registry) on loopback, crane, helm push/pull oci://.
test-bundle:
	$(PYTEST) tests/bundle

# The browser tier writes test-output/{login,launch,progress,sso-cancelled,launch-link,server-list,usage-admin}.png; this copies the current ones into the docs.
screenshots:
	rm -f test-output/login.png test-output/launch.png test-output/progress.png test-output/sso-cancelled.png test-output/launch-link.png test-output/server-list.png test-output/usage-admin.png
	$(PYTEST) tests/browser -k "login_page or team_member or start_work or cancel_at_the_provider or launch_link or sees_usage_and_stops"
	cp test-output/login.png test-output/launch.png test-output/progress.png test-output/sso-cancelled.png test-output/launch-link.png test-output/server-list.png test-output/usage-admin.png docs/screenshots/

schema:
	$(VENV)/teamhub schema --write

bench:
	$(VENV)/python benchmarks/catalog_bench.py
	$(VENV)/python benchmarks/hub_bench.py
	$(VENV)/python benchmarks/upgrade_downtime_bench.py
	$(VENV)/python benchmarks/usage_bench.py
	$(VENV)/python benchmarks/bundle_bench.py

demo: setup-demo
	$(VENV)/teamhub demo --values $(VALUES) --port $(PORT)
