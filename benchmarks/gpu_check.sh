#!/usr/bin/env bash
# GPU check of ganrestore: one script for a machine with a CUDA GPU whose python3
# has torch (numpy, scipy, safetensors) but maybe not snakemake: it runs the
# library directly from this checkout.  Prints one JSON object on stdout (also
# written to --out); progress goes to stderr.  Budget: under 8 minutes on an H200.
#
#   benchmarks/gpu_check.sh                    # on the GPU machine
#   benchmarks/gpu_check.sh --cpu-smoke        # the CPU-only parts, tiny sizes, < 1 min
#   benchmarks/gpu_check.sh --python .venv/bin/python --out results/gpu_check.json
#
# Steps: (1) the environment (torch, CUDA device, memory); (2) the GPU-marked
# tests (pytest -m gpu; skipped with a note when pytest is missing); (3)
# benchmarks/bench_gan.py --check: batched CSGM / IAGAN against per-image loops
# on the device with achieved TFLOP/s beside a dense matmul measured in the same
# run, CSGM + IAGAN timed on 100 images x 5 tasks at 64 px and on 16 images x 5
# tasks at 128 px with a BEGAN, and the memory of one restore job per method at
# 1024 px.  The output format is described in README.md ("GPU check").
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
SMOKE=0
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) SMOKE=1 ;;
    --python) PY="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
T0=$(date +%s)

log() { echo "gpu_check: $*" >&2; }

# (1) environment
"$PY" - "$SMOKE" > "$TMP/env.json" <<'EOF'
import json, platform, sys
import torch
smoke = sys.argv[1] == "1"
env = {"python": platform.python_version(), "torch": torch.__version__,
       "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
       "cpu_smoke": smoke, "cpu_threads": torch.get_num_threads()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 1024 ** 3, 1), gpu_count=torch.cuda.device_count())
print(json.dumps(env))
EOF
[ $? -eq 0 ] || { echo '{"error": "python3 cannot import torch"}'; exit 1; }
CUDA=$("$PY" -c "import json,sys; print(int(json.load(open(sys.argv[1]))['cuda_available']))" "$TMP/env.json")
if [ "$SMOKE" -eq 0 ] && [ "$CUDA" -eq 0 ]; then
  log "no CUDA device: running the CPU smoke instead (--cpu-smoke)"
  SMOKE=1
fi
log "environment: $(cat "$TMP/env.json")"

# (2) GPU-marked tests
if "$PY" -c "import pytest" 2>/dev/null; then
  if [ "$SMOKE" -eq 1 ]; then
    FILES=$(grep -l "mark.gpu" tests/test_*.py 2>/dev/null | tr '\n' ' ')   # collect only those files
  else
    FILES="tests"
  fi
  log "pytest -m gpu $FILES"
  TS=$(date +%s)
  # shellcheck disable=SC2086
  timeout 300 "$PY" -m pytest -q -m gpu -p no:cacheprovider $FILES > "$TMP/pytest.txt" 2>&1
  RC=$?
  "$PY" - "$TMP/pytest.txt" "$RC" "$(( $(date +%s) - TS ))" "$FILES" > "$TMP/tests.json" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|error|errors)", text)}
print(json.dumps({"command": f"pytest -q -m gpu {sys.argv[4]}", "rc": int(sys.argv[2]),
                  "seconds": int(sys.argv[3]), **counts, "tail": text.strip().splitlines()[-3:]}))
EOF
else
  echo '{"skipped": "pytest is not installed for this python"}' > "$TMP/tests.json"
fi
log "tests: $(cat "$TMP/tests.json")"

# (3) benchmarks and timings (bench_gan.py --check)
ARGS=(--check --json "$TMP/bench.json")
[ "$SMOKE" -eq 1 ] && ARGS+=(--cpu-smoke --device cpu --threads 1) || ARGS+=(--device cuda --threads 4)
log "$PY benchmarks/bench_gan.py ${ARGS[*]}"
timeout 420 "$PY" benchmarks/bench_gan.py "${ARGS[@]}" >&2
BRC=$?
[ -s "$TMP/bench.json" ] || echo "{\"error\": \"bench_gan.py --check exited with $BRC\"}" > "$TMP/bench.json"

"$PY" - "$TMP" "$(( $(date +%s) - T0 ))" "$BRC" > "$TMP/all.json" <<'EOF'
import json, sys
d = sys.argv[1]
out = {"format": "ganrestore-gpu-check/1",
       "env": json.load(open(f"{d}/env.json")),
       "tests": json.load(open(f"{d}/tests.json")),
       "bench": json.load(open(f"{d}/bench.json")),
       "bench_rc": int(sys.argv[3]),
       "seconds": int(sys.argv[2])}
print(json.dumps(out, indent=2))
EOF
cat "$TMP/all.json"
[ -n "$OUT" ] && cp "$TMP/all.json" "$OUT"
exit $BRC
