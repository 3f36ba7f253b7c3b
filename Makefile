# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-blue-green demo-k8s test-k8s test-storm test check static deps prometheus chromium helm clean fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[test]'
	touch $(STAMP)

deps: $(STAMP) prometheus chromium helm

# helm v3.17.3 for the chart tests, cached outside the checkout (tools/helm.sh says where).
helm:
	@tools/helm.sh >/dev/null

# Debian's Prometheus, only when it is not on PATH already.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# Debian's headless Chromium for the dashboard's browser tests (Playwright drives it; never
# `playwright install`), only when it is not installed already.
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }

demo: deps
	$(BIN)/rollouts demo

# The same parts released blue-green: preview analysis, then the active Service switches.
demo-blue-green: deps
	$(BIN)/rollouts demo --blue-green

# The same demo on a real control plane (Kubernetes 1.20.2 from Debian's source, built once by
# tools/k8s/build.sh into ~/.cache/rollouts) instead of the embedded API.
demo-k8s: deps
	bash tools/k8s/build.sh >/dev/null
	$(BIN)/rollouts demo --kube

# The end-to-end suite on that control plane alone (part of `make test`).
test-k8s: deps
	bash tools/k8s/build.sh >/dev/null
	$(BIN)/python -m pytest tests/k8s -q

# The long kill storm (tests/storm, README: Proven under kills): 1,000 SIGKILLs of controller
# processes by default; ROLLOUTS_STORM_KILLS and ROLLOUTS_STORM_SEED override (`make test` runs 200).
test-storm: deps
	ROLLOUTS_STORM_KILLS=$${ROLLOUTS_STORM_KILLS:-1000} $(BIN)/python -m pytest tests/storm/test_storm.py -q -p no:cacheprovider

# Types, lint and the import contracts (also part of every test run).
static: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The fast developer loop (about a minute): static checks, unit and contract tests.
# Four workers on two cores: most of these tests wait on sockets and watches, not the CPU.
check: deps static
	$(BIN)/python -m pytest -m "not slow" -n 4

# Everything, as CI runs it: static checks and the whole suite, the demo and process tests included.
# The fast tests first, four workers as in `check`; then the slow proofs (kill storms, shards, the
# real control plane, the demo) on two workers, a group at a time (tests/conftest.py's xdist_group:
# the real control plane's tests share one worker and one control plane, the rest go file by file).
test: deps static
	$(BIN)/python -m pytest -m "not slow" -n 4
	$(BIN)/python -m pytest -m slow -n 2 --dist loadgroup

# The fuzzers alone, with no per-test timeout: `ROLLOUTS_FUZZ_EXAMPLES=1000000 make fuzz` draws a
# million inputs over them (tests/fuzz/budget.py; hours on one core); unset, the defaults of `make test`.
fuzz: $(STAMP)
	$(BIN)/python -m pytest tests/fuzz -q --timeout=0

clean:
	rm -rf $(VENV) .pytest_cache
