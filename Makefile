# Set-up: `make install`, then `make test`. Every target runs inside the virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= experiments/cifar10_cpu.py
DATA ?= tfds
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))
ARGS ?=
HORSE ?= random
BIRD ?= random
T ?= 0.5
PEGASI_T ?= 0.3,0.4,0.5,0.6,0.7
STEPS ?= 11

.PHONY: install test lint format train classifier interpolate pegasi evaluate compare export bench clean

install:  ## a virtual environment with the package (editable) and its test tools
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'

test:  ## the test suite; "no tests collected" (pytest exit code 5) counts as a failure
	@$(BIN)/pytest $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint:
	$(BIN)/ruff check acai experiments tests

format:
	$(BIN)/ruff format acai experiments tests
	$(BIN)/ruff check --fix acai experiments tests

train:  ## make train CONFIG=experiments/cifar10_cpu.py DATA=path/to/cifar10 [WORKDIR=...] [ARGS="--set depth=32"]
	$(BIN)/acai train --config $(CONFIG) --data $(DATA) --workdir $(WORKDIR) $(ARGS)

classifier:  ## the CIFAR-10 classifier that scores pegasi: make classifier DATA=...
	$(BIN)/acai classifier --data $(DATA) $(ARGS)

interpolate:  ## make interpolate HORSE=7 BIRD=25 [WORKDIR=...] [OUT=...] [T=0.5] [STEPS=11]
	$(BIN)/acai interpolate --workdir $(WORKDIR) --horse '$(HORSE)' --bird '$(BIRD)' \
		--out $(or $(OUT),out/pegasus) --t $(T) --steps $(STEPS) $(ARGS)

pegasi:  ## 64 pegasi and the best one: make pegasi [WORKDIR=...] [OUT=...] [PEGASI_T=0.3,0.4,0.5,0.6,0.7]
	$(BIN)/acai pegasus --workdir $(WORKDIR) --out $(or $(OUT),$(WORKDIR)/pegasi) --t $(PEGASI_T) $(ARGS)

evaluate:  ## metrics.json and report.html in WORKDIR: make evaluate [WORKDIR=...]
	$(BIN)/acai evaluate $(WORKDIR) $(ARGS)

compare:  ## two runs' metrics side by side: make compare A=runs/x B=runs/y
	$(BIN)/acai compare $(A) $(B) $(ARGS)

export:  ## .keras files, a SavedModel, metadata: make export [WORKDIR=...] [OUT=$(WORKDIR)/export] [ARGS=--overwrite]
	$(BIN)/acai export $(WORKDIR) --out $(or $(OUT),$(WORKDIR)/export) $(ARGS)

bench:  ## make bench [CONFIG=experiments/cifar10.py] [ARGS="--set precision=float32"]
	$(BIN)/acai bench --config $(CONFIG) $(ARGS)

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
