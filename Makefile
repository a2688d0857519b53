# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo-output

.PHONY: setup extras demo test lint clean

$(BIN)/mammosynth: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/mammosynth

demo: setup
	$(BIN)/mammosynth demo --out $(OUT) --overwrite

# Optional test tools, best effort: headless Chromium (the report's browser test) and the radiomics extra
# (FRD; pyradiomics builds on Python >= 3.10 only this way). Without them those tests skip and say why.
extras: setup
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "no headless Chromium: the report's browser test will skip"
	@$(BIN)/python -c "import frd_score.frd, radiomics" >/dev/null 2>&1 || \
	  { $(BIN)/python -m pip install --quiet versioneer && \
	    $(BIN)/python -m pip install --quiet --no-build-isolation pyradiomics && \
	    $(BIN)/python -m pip install --quiet frd-score; } || \
	  echo "no radiomics extra: the FRD test will skip"

test: setup extras
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 -q

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
