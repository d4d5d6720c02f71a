# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast gpu-check gpu-wheels clean

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

# Every GPU check in one command, on the lent GPU machine: its fixed image's own python3 (no
# network, no PyPI, no .venv) plus the wheels that `make gpu-wheels` put in .whl/ (carried there).
OUT ?= gpu_check_out
GPU_CHECK_FLAGS ?=

gpu-check:
	OUT="$(OUT)" bash tools/gpu_check.sh $(GPU_CHECK_FLAGS)

# What the GPU image lacks, as cp312 x86-64 wheels without their dependencies (the image has
# those: absl-py, cloudpickle, etils, numpy, protobuf >= 5.28.3, psutil, PyYAML, packaging).
# Run where PyPI is reachable. Pinned: the releases the CPU suite runs with jax 0.10 (none of them
# depends on jax; grain needs protobuf >= 5.28.3, which tools/gpu_check.sh checks on the image).
WHEEL_DIR ?= .whl
GPU_WHEELS := grain==0.2.18 array-record==0.8.6 portpicker==1.6.0 ml-collections==1.1.0 tensorboardX==2.6.5

gpu-wheels:
	mkdir -p $(WHEEL_DIR)
	rm -f $(WHEEL_DIR)/*.whl
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --abi cp312 --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
	  --platform any -d $(WHEEL_DIR) $(GPU_WHEELS)
	@ls -1 $(WHEEL_DIR)/*.whl
	@du -cb $(WHEEL_DIR)/*.whl | awk 'END { printf "%d wheels, %.2f MiB in $(WHEEL_DIR)/\n", NR - 1, $$1 / 1048576 }'

clean:
	rm -rf $(VENV) demo_out gpu_check_out .pytest_cache
