.PHONY: up test lint bench bootstrap clean

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	@.venv/bin/depot up

test:
	@bash scripts/bootstrap.sh --browser
	@.venv/bin/python -m pytest -q $(PYTEST_ARGS)

lint: bootstrap
	@.venv/bin/python -m ruff check shared web workers tests bench
	@.venv/bin/python -m mypy shared

bench: bootstrap
	@.venv/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf .venv var .pytest_cache
