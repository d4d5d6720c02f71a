#!/usr/bin/env bash
# Every GPU check in one command, on the lent GPU machine (`make gpu-check`):
#
#   OUT=dir bash tools/gpu_check.sh [--smoke] [flags for tools/gpu_check.py]
#
# Runs with that machine's fixed image as it is: its own python3 (or $PYTHON), no network, no PyPI,
# no venv. What the image lacks comes as wheels in .whl/ (`make gpu-wheels` where PyPI is reachable;
# carried with the working tree), installed with pip --no-index into a directory on PYTHONPATH.
# The report (report.json, report.md, rewritten after every section) and this script's log
# (gpu_check.log) go to $OUT, else gpu_check_out. Exits with tools/gpu_check.py's status.
set -euo pipefail

PROTOBUF_MIN=5.28.3  # grain's requirement
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
OUT_DIR=${OUT:-gpu_check_out}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WHEELS=${XY_GPU_WHEEL_DIR:-$ROOT/.whl}
SITE=${TMPDIR:-/tmp}/xy_jax_gpu_wheels
cd "$ROOT"

exec > >(tee -a "$OUT_DIR/gpu_check.log") 2>&1
tee_pid=$!
# The log is complete when the script has exited.
trap 'exec >&- 2>&-; wait "$tee_pid" 2> /dev/null || true' EXIT

# version_ge A B: A >= B as dotted versions.
version_ge() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

protobuf_version() {
  if [ -n "${XY_PROTOBUF_VERSION_OVERRIDE:-}" ]; then  # for tests
    echo "$XY_PROTOBUF_VERSION_OVERRIDE"
  else
    "$PY" -c 'import google.protobuf; print(google.protobuf.__version__)' 2>/dev/null || echo missing
  fi
}

"$PY" - <<'EOF'
import sys
from importlib import metadata
print(f"python {sys.version.split()[0]} ({sys.executable})")
for dist in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "torch"):
  try:
    print(f"{dist} {metadata.version(dist)}")
  except metadata.PackageNotFoundError:
    if "plugin" not in dist:
      print(f"{dist} missing")
EOF
protobuf=$(protobuf_version)
echo "protobuf $protobuf"
if [ "$protobuf" = missing ] || ! version_ge "$protobuf" "$PROTOBUF_MIN"; then
  echo "gpu_check: protobuf $protobuf on this image; grain needs protobuf >= $PROTOBUF_MIN (pip cannot fetch it here)"
  exit 2
fi

shopt -s nullglob
wheels=("$WHEELS"/*.whl)
shopt -u nullglob
rm -rf "$SITE"
mkdir -p "$SITE"
if [ ${#wheels[@]} -gt 0 ]; then
  echo "installing ${#wheels[@]} wheels from $WHEELS into $SITE"
  if "$PY" -m pip --version > /dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$SITE" "${wheels[@]}"
  else
    # No pip in the image: a wheel is a zip of its site-packages files.
    for w in "${wheels[@]}"; do "$PY" -m zipfile -e "$w" "$SITE"; done
  fi
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"

missing=$("$PY" -c '
import importlib.util
print(" ".join(m for m in ("grain", "array_record", "portpicker", "ml_collections", "tensorboardX")
               if importlib.util.find_spec(m) is None))')
if [ -n "$missing" ]; then
  echo "gpu_check: missing on this image: $missing (no wheels for them in $WHEELS: run \`make gpu-wheels\` where PyPI is reachable and carry .whl/)"
  exit 2
fi

# JAX allocates on demand so the transformers/torch sections find memory on the same GPU.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
unset XLA_PYTHON_CLIENT_MEM_FRACTION
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-${TMPDIR:-/tmp}/xy_jax_gpu_jit_cache}
export TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1
echo "env: XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_COMPILATION_CACHE_DIR=$JAX_COMPILATION_CACHE_DIR"
echo "running: $PY tools/gpu_check.py --out $OUT_DIR $*"

rc=0
"$PY" tools/gpu_check.py --out "$OUT_DIR" "$@" || rc=$?
echo "gpu_check: exit $rc; report in $OUT_DIR/report.md"
exit "$rc"
