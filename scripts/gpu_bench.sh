#!/usr/bin/env bash
# The simulator benchmarks on a CUDA machine, as run on the lent H100 (README, "GPU figures").
# Each stage is its own process under its own time limit, so a failure or overrun in one keeps the
# other's results; JSON goes to $OUT (default artifacts/gpu). Python packages come from the
# environment, or from wheels in .whl/ when there are any (machines that cannot pip install).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-artifacts/gpu}
BACKEND=${BACKEND:-cuda}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/deft-site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/deft-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 DEFT_CACHE_DIR=${DEFT_CACHE_DIR:-/tmp/deft-cache}
PY=${PY:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

stage() {  # name, seconds, python code writing JSON to stdout
  echo "=== $1"
  local t0=$SECONDS
  timeout "$2" "$PY" -c "$3" >"$OUT/$1.json" 2>"$OUT/$1.err"
  echo "rc=$? in $((SECONDS - t0)) s"; tail -c 1500 "$OUT/$1.json"; echo; tail -n 5 "$OUT/$1.err"
}

# Shells: a 2-step run compiles every kernel first, so the figures are warm-cache ones.
stage shells "${T_SHELL:-240}" "
import json; from sim.bench import shells as b
b.thinshelllab_floor(steps=2, backend='$BACKEND')
print(json.dumps({'thinshelllab': b.thinshelllab_floor(steps=${SHELL_STEPS:-40}, backend='$BACKEND')}), flush=True)
for n in (${SIZES:-17,33,65,129}):
    print(json.dumps({'size': b.sheet_sizes((n,), ${SIZE_STEPS:-10}, '$BACKEND')[0]}), flush=True)"
# Volumetric: the cases in one process (each excludes its own compiling run from its timings).
stage volumetric "${T_VOL:-300}" "
import json; from sim.bench.volumetric import run_case
for case in '${VOL_CASES:-two_pad_grasp_plastic_7k mpm_water_19683 pad_press_elastic_20k mpm_fluid_100k mpm_scaling_20k mpm_scaling_50k mpm_scaling_100k}'.split():
    try:
        print(json.dumps(run_case(case, backend='$BACKEND')), flush=True)
    except Exception as exc:  # recorded, and the next case still runs
        print(json.dumps({'case': case, 'error': repr(exc)[-1500:]}), flush=True)"
