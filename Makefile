.PHONY: up test lint bench bootstrap clean

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	@.venv/bin/depot up

# The outer ceiling of a test run; the suite's own watchdog (run_timeout, 25 min) fires first, with every stack.
TEST_TIMEOUT ?= 30m

test:
	@bash scripts/bootstrap.sh --browser
	@.venv/bin/python -m ruff check shared web workers cli tests bench
	@.venv/bin/python -m mypy shared
	@timeout --foreground --kill-after=30s $(TEST_TIMEOUT) .venv/bin/python -m pytest -q $(PYTEST_ARGS) || { \
		rc=$$?; [ $$rc -ne 124 ] || echo "make test: the run took longer than $(TEST_TIMEOUT) and was stopped" >&2; \
		exit $$rc; }

lint: bootstrap
	@.venv/bin/python -m ruff check shared web workers cli tests bench
	@.venv/bin/python -m mypy shared

bench: bootstrap
	@.venv/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf .venv var .pytest_cache
