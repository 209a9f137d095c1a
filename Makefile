# latent music lab — the front door. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := latent-music-lab
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
LINTED := lib tests scripts notebooks
EXPLORE_PORT ?= 8866
# The dataset every stage runs on: notes (the default), genres (both shipped) or a folder of audio,
# e.g. `make run-all DATASET=~/Music/jazz`. Its outputs go to outputs/datasets/<name>/ (see README).
DATASET ?= notes
SHIPPED_DATASETS := notes genres
export LML_DATASET := $(if $(filter $(SHIPPED_DATASETS),$(DATASET)),$(DATASET),$(abspath $(DATASET)))

# The clip length of DATASET=genres or a folder, in seconds (default 1; e.g. CLIP_SECONDS=4 for phrases).
# Another length is another dataset: data and outputs get a -<seconds>s suffix (see README).
CLIP_SECONDS ?=
export LML_CLIP_SECONDS := $(CLIP_SECONDS)

# Clips of a split a stage holds in memory at most: a larger split (hours of music) is a seeded sample, the
# same in every stage, and each notebook's metrics say so (sampled_splits). TRAIN_CLIPS limits the training
# split, EVALUATION_CLIPS each of the others; `all` lifts a limit. Every shipped dataset's splits fit whole.
TRAIN_CLIPS ?= 3000
EVALUATION_CLIPS ?= 600
export LML_TRAIN_CLIPS := $(TRAIN_CLIPS)
export LML_EVALUATION_CLIPS := $(EVALUATION_CLIPS)

# Where a folder's files are decoded when it is prepared: beam (Apache Beam, a worker per core; the
# default) or local (this process). BEAM_OPTIONS sends the pipeline elsewhere, e.g.
# BEAM_OPTIONS="--runner=FlinkRunner --flink_master=host:8081 --environment_type=EXTERNAL
# --environment_config=localhost:50000", with `make beam-worker` on every machine of the cluster (see README).
ENGINE ?= beam
BEAM_OPTIONS ?=
BEAM_WORKER_PORT ?= 50000
export LML_PREPARE_ENGINE := $(ENGINE)
export LML_BEAM_OPTIONS := $(BEAM_OPTIONS)

# Where training runs: default (one device), mirrored (every local GPU) or multi-worker (machines
# listed in TF_CONFIG, one command per machine; see the README's "Several machines").
DISTRIBUTION ?= default
export LML_DISTRIBUTION := $(DISTRIBUTION)

# The seed of every notebook's weights, shuffling and sampling: `make run-all SEED=1` (in a second clone)
# is how lib/expectations.json's tolerances were measured (scripts/measure_spread.py).
SEED ?= 0
export LML_SEED := $(SEED)

export TF_CPP_MIN_LOG_LEVEL := 2  # TensorFlow's C++ start-up notices stay out of notebooks and logs

.DEFAULT_GOAL := help
.PHONY: help setup browser data beam-worker run-all report bench bench-scale check test lint format lab explore check-outputs clean lock \
	compress decompress recordings

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the pinned dependencies (redone when they change)

$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "latent music lab" >/dev/null
	touch $(STAMP)

browser: ## Install Debian's chromium for the browser test (as root; otherwise prints how)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: 'sudo apt-get install chromium' enables the browser test"; fi; }

data: setup ## Build DATASET into data/: render the notes, or prepare a folder (cached; resumes; ENGINE=beam|local)
	$(BIN)/python -m lib.data.dataset

beam-worker: setup ## Serve Beam workers with this project's code on this machine (BEAM_WORKER_PORT), for a cluster
	$(BIN)/python -m lib.data.engine worker-pool $(BEAM_WORKER_PORT)

run-all: setup ## Build DATASET, run every notebook headless into its outputs folder, then make check
	$(BIN)/python -m lib.data.dataset
	$(BIN)/python -m lib.lab.run_notebooks $(NOTEBOOKS)
	$(BIN)/python -m lib.lab.checks

report: setup ## The last run's executed notebooks as standalone HTML with an index: <outputs>/report/index.html
	$(BIN)/python -m lib.lab.report

# The whole-recording codec (`lml`, installed with the package) uses a music model: the genre
# collections' unless DATASET is given on the command line (a folder's model, after its run-all).
CODEC_DATASET := $(if $(filter command line environment,$(origin DATASET)),$(LML_DATASET),genres)

compress: setup ## Compress a whole recording: make compress IN=song.flac [OUT=song.lml] [DATASET=genres] [SEARCH_STEPS=0]
	@test -n "$(IN)" || { echo "usage: make compress IN=song.flac [OUT=song.lml] [DATASET=<folder>] [SEARCH_STEPS=n]"; exit 2; }
	$(BIN)/lml compress "$(IN)" $(if $(OUT),"$(OUT)") --dataset "$(CODEC_DATASET)" $(if $(SEARCH_STEPS),--search-steps "$(SEARCH_STEPS)")

decompress: setup ## Decompress to a mono WAV at the lab's rate: make decompress IN=song.lml [OUT=song.wav]
	@test -n "$(IN)" || { echo "usage: make decompress IN=song.lml [OUT=song.wav]"; exit 2; }
	$(BIN)/lml decompress "$(IN)" $(if $(OUT),"$(OUT)")

recordings: setup ## Measure whole test files of the genres (or DATASET=<folder>) and write a listening page
	$(BIN)/lml report --dataset "$(CODEC_DATASET)"

bench: setup ## Measure speed (real-time factors, Griffin-Lim sweep, training throughput, peak memory): <outputs>/metrics/bench.json
	$(BIN)/python -m lib.lab.bench

bench-scale: setup ## Preparation and training from the stream at 1, 10 and 50 h of music (HOURS="1 10 50"): <outputs>/metrics/bench_scale.json
	LML_DATASET=genres $(BIN)/python -m lib.data.dataset
	$(BIN)/python -m lib.lab.bench_scale $(HOURS)

check: setup ## Compare the last full run of DATASET (and make bench's figures) with lib/expectations.json; fail on regressions
	$(BIN)/python -m lib.lab.checks

test: setup browser lint ## Lint, unit tests (a folder run included), then every notebook (and the explorer) in smoke mode under nbval
	LML_DATASET=notes $(BIN)/python -m pytest tests
	LML_DATASET=notes LML_SMOKE=1 $(BIN)/python -m pytest --nbval-lax --nbval-kernel-name $(KERNEL) $(NOTEBOOKS) notebooks/explorer.ipynb

lint: setup ## ruff check and format check of the code and the notebooks
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

lab: setup ## Open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

explore: setup ## Serve the explorers as a Voila app on 127.0.0.1 (needs the models of notebooks 01 and 04)
	@echo "latent explorer: http://127.0.0.1:$(EXPLORE_PORT)/  (Ctrl-C stops it)"
	$(BIN)/voila notebooks/explorer.ipynb --no-browser --port=$(EXPLORE_PORT) --Voila.ip=127.0.0.1

check-outputs: setup ## Refresh the committed regression outputs (nbval-check-output cells) from a smoke run
	LML_DATASET=notes LML_SMOKE=1 $(BIN)/python scripts/sync_check_outputs.py $(NOTEBOOKS)

lock: setup ## Rewrite constraints.txt from the installed environment
	{ echo "# Every transitive dependency, pinned: generated by 'make lock' (pip freeze of a clean setup)."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^tinysoundfont=='; } > constraints.txt

clean: ## Remove generated data, outputs and the environment
	rm -rf $(VENV) data/default data/smoke outputs/*/ outputs/smoke
