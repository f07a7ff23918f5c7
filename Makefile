.PHONY: up test bench bootstrap clean

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	@.venv/bin/depot up

test:
	@bash scripts/bootstrap.sh --browser
	@.venv/bin/python -m pytest -q $(PYTEST_ARGS)

bench: bootstrap
	@.venv/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf .venv var .pytest_cache
