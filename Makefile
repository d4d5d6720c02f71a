# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast gpu-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so the test extra's range is already met. The tpu extra
	# (libtpu) lets tools/plan.py compile for TPU topologies on this CPU-only machine.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,tpu]'
	touch $(STAMP)

DEMO_FLAGS ?=

demo: $(STAMP)
	$(PY) tools/demo.py --out demo_out $(DEMO_FLAGS)

# Two workers, one test module each at a time (module fixtures are built once per module).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadscope

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadscope -m "not heavy"

# Every GPU check in one command (needs jax with CUDA: `pip install -e '.[gpu]'` on the GPU host).
gpu-check: $(STAMP)
	$(PY) tools/gpu_check.py --out gpu_check_out

clean:
	rm -rf $(VENV) demo_out gpu_check_out .pytest_cache
