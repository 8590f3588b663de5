# Set-up: `make install`, then `make test`. Every target runs inside the virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= experiments/cifar10_cpu.py
DATA ?= tfds
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))
ARGS ?=
HORSE ?= sample
BIRD ?= sample
T ?= 0.5
PEGASI_T ?= 0.3,0.4,0.5,0.6,0.7
STEPS ?= 11
PORT ?= 8000
# Test processes (pytest-xdist); 0 runs the suite in one process.
TEST_WORKERS ?= 2
HOST ?= 127.0.0.1

.PHONY: install test lint format train classifier interpolate demo pretrained pegasi evaluate compare export bench clean

INSTALLED := $(VENV)/.installed

install: $(INSTALLED)  ## a virtual environment with the package (editable) and its test tools

# Every target below installs first if needed, so `make interpolate` and `make test` are the
# whole set-up on a fresh clone.
$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Two processes take about a third off the suite on a 2-core CPU (704 s to 461 s, idle): much
# of a test is tracing graphs and starting processes, on one core.
test: $(INSTALLED)  ## the test suite; "no tests collected" (pytest exit code 5) counts as a failure
	@$(BIN)/pytest -n $(TEST_WORKERS) $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(INSTALLED)
	$(BIN)/ruff check acai experiments tests

format: $(INSTALLED)
	$(BIN)/ruff format acai experiments tests
	$(BIN)/ruff check --fix acai experiments tests

train: $(INSTALLED)  ## make train CONFIG=experiments/cifar10_cpu.py DATA=path/to/cifar10 [WORKDIR=...] [ARGS="--set depth=32"]
	$(BIN)/acai train --config $(CONFIG) --data $(DATA) --workdir $(WORKDIR) $(ARGS)

classifier: $(INSTALLED)  ## the CIFAR-10 classifier that scores pegasi: make classifier DATA=...
	$(BIN)/acai classifier --data $(DATA) $(ARGS)

# Without WORKDIR on the command line, interpolate uses the model shipped in acai/pretrained.
interpolate: $(INSTALLED)  ## make interpolate [HORSE=sample|random|7|my.jpg] [BIRD=...] [WORKDIR=...] [OUT=...] [T=0.5]
	$(BIN)/acai interpolate $(if $(filter command line environment,$(origin WORKDIR)),--workdir $(WORKDIR)) \
		--horse '$(HORSE)' --bird '$(BIRD)' --out $(or $(OUT),out/pegasus) --t $(T) --steps $(STEPS) $(ARGS)

# Without WORKDIR on the command line, the demo uses the model shipped in acai/pretrained too.
demo: $(INSTALLED)  ## a page for making pegasi by hand: make demo [WORKDIR=...] [DATA=...] [PORT=8000] [HOST=127.0.0.1]
	$(BIN)/acai demo $(if $(filter command line environment,$(origin WORKDIR)),--workdir $(WORKDIR)) \
		$(if $(filter command line environment,$(origin DATA)),--data $(DATA)) \
		--port $(PORT) --host $(HOST) $(ARGS)

# The recipe's feature loss needs its own classifier first (trained once, then kept).
pretrained: $(INSTALLED)  ## retrain and re-export the shipped model: make pretrained DATA=path/to/cifar10
	$(BIN)/acai provenance --data $(DATA)
	test -f runs/perceptual/classifier.keras || $(BIN)/acai classifier --data $(DATA) --seed 1 \
		--epochs 4 --validation 500 --out runs/perceptual/classifier.keras
	$(BIN)/acai train --config experiments/pegasus.py --data $(DATA) --workdir runs/pretrained $(ARGS)
	$(BIN)/acai export runs/pretrained --out acai/pretrained/pegasus --overwrite

pegasi: $(INSTALLED)  ## 64 pegasi and the best one: make pegasi [WORKDIR=...] [OUT=...] [PEGASI_T=0.3,0.4,0.5,0.6,0.7]
	$(BIN)/acai pegasus --workdir $(WORKDIR) --out $(or $(OUT),$(WORKDIR)/pegasi) --t $(PEGASI_T) $(ARGS)

evaluate: $(INSTALLED)  ## metrics.json and report.html in WORKDIR: make evaluate [WORKDIR=...]
	$(BIN)/acai evaluate $(WORKDIR) $(ARGS)

compare: $(INSTALLED)  ## two runs' metrics side by side: make compare A=runs/x B=runs/y
	$(BIN)/acai compare $(A) $(B) $(ARGS)

export: $(INSTALLED)  ## .keras files, a SavedModel, metadata: make export [WORKDIR=...] [OUT=$(WORKDIR)/export] [ARGS=--overwrite]
	$(BIN)/acai export $(WORKDIR) --out $(or $(OUT),$(WORKDIR)/export) $(ARGS)

bench: $(INSTALLED)  ## make bench [CONFIG=experiments/cifar10.py] [ARGS="--set precision=float32"]
	$(BIN)/acai bench --config $(CONFIG) $(ARGS)

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
