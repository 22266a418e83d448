# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BABEL_KEYWORDS := -k t -k N_

.PHONY: help install npm run console migrate test lint i18n i18n-extract i18n-update i18n-compile clean bench-search

help:
	@echo "make run      install (first time), migrate and start the bot: web chat on http://127.0.0.1:8080/"
	@echo "make console  chat with the bot in this terminal"
	@echo "make test     run the whole test suite"
	@echo "make lint     ruff"
	@echo "make i18n     extract messages, update the vi/en catalogues, check them"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Test-only tools from npm (axe-core, for the web chat's accessibility checks). Without npm the
# suite still runs: those checks are skipped (and fail in CI, where MOTCUA_TEST_REQUIRE_ALL=1).
NPM := $(shell command -v npm 2>/dev/null)
node_modules/.package-lock.json: package-lock.json
ifdef NPM
	npm ci --no-audit --no-fund --loglevel=error
else
	@echo "npm not found: the accessibility checks of the web chat will be skipped"
endif

npm: node_modules/.package-lock.json

run: $(STAMP)
	$(BIN)/motcua run

console: $(STAMP)
	$(BIN)/motcua console

migrate: $(STAMP)
	$(BIN)/motcua migrate

test: $(STAMP) npm
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

i18n: i18n-extract i18n-update i18n-compile

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
		--project motcua-bot --copyright-holder "Một Cửa bot contributors" -o locales/messages.pot .

i18n-update: $(STAMP)
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages \
		--ignore-obsolete --width 100

# The bot reads the .po files directly; compiling is a syntax and completeness check.
i18n-compile: $(STAMP)
	$(BIN)/pybabel compile -d locales -D messages --statistics
	@find locales -name '*.mo' -delete

bench-search: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/search_quality.py
	$(BIN)/python bench/search_speed.py

clean:
	rm -rf $(VENV) var .pytest_cache
