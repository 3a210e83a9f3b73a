# Two commands do all set-up: `make run` and `make test`. Both build .venv when it is missing or when
# pyproject.toml changed (the stamp), installing torch first from this machine's pinned CPU build so that pip
# never resolves a multi-GB CUDA torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TORCH_PIN ?= torch==2.13.0
EXTRAS ?= train,baselines,sweep,dev
VIDEO_VENV := .venv-video
VIDEO_PY := $(VIDEO_VENV)/bin/python
VIDEO_STAMP := $(VIDEO_VENV)/.installed-stamp

.PHONY: run test install video lint bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# The video environment (MediaPipe pins protobuf < 5, which the train extras refuse: see docs/video.md). The
# main environment's `valgusml.io.read_video` runs MediaPipe through it; make test builds it (~1 min) so the
# video tests run.
$(VIDEO_STAMP): pyproject.toml
	test -x $(VIDEO_PY) || $(PYTHON) -m venv $(VIDEO_VENV)
	$(VIDEO_PY) -m pip install --quiet --upgrade pip
	$(VIDEO_PY) -m pip install --quiet -e ".[video]"
	touch $(VIDEO_STAMP)

video: $(VIDEO_STAMP)

run: $(STAMP)
	$(PY) -m valgusml.run_default

# Two workers, one per CI core: the suite is mostly single-threaded (imports, subprocess CLIs, small numpy), so the
# second core nearly halves it (5:44 -> 3:30 here). Whole files go to one worker so their module fixtures build once.
TEST_WORKERS ?= 2

test: $(STAMP) $(VIDEO_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check valgusml tests scripts

# Long checks (minutes; not part of make test): speed and memory figures quoted in notes and README.
bench: $(STAMP)
	$(PY) scripts/bench_generator.py --n 5000
	$(PY) scripts/bench_models.py
	$(PY) scripts/bench_predictor.py
	$(PY) scripts/bench_baselines.py
	$(PY) scripts/learnability_check.py
