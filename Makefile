# The two commands of the README. Both set everything up first (idempotent, quick when done).
.PHONY: run test setup bench

setup:
	@bash scripts/setup.sh

# The studio on the built-in default scene; headless (simulate + picture + summary) where
# there is no display.
run: setup
	@.venv/bin/deft

# The whole suite, under a virtual X server (pytest-xvfb starts one when DISPLAY is unset).
test: setup
	@bash scripts/run_tests.sh $(PYTEST_ARGS)

bench: setup
	@.venv/bin/deft bench sim --json artifacts/bench-sim.json
