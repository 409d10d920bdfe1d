# The two commands a newcomer needs:
#   make run    set everything up and start the app on http://localhost:8501
#   make test   set everything up and run the whole test suite (what CI runs)
.PHONY: run test setup bench

run:
	bash scripts/setup.sh
	.venv/bin/plinth serve --host $${HOST:-localhost} --port $${PORT:-8501}

test:
	bash scripts/setup.sh --test
	.venv/bin/python -m pytest -q -rs --durations=40 -n 2 --dist loadfile --no-loadscope-reorder

bench:
	.venv/bin/python bench/single.py
	.venv/bin/python bench/multiview.py
