#!/usr/bin/env bash
# FacePhys on the GPU machine: the LAST call of the onnxruntime-gpu transfer (../shared/gpu/README.md),
# in one command: assemble the wheel, install it and the JAX staging wheels, optimize the model with
# onnxfit for CUDA (and a batched copy), run reports/facephys_gpu.py, results into $OUT.
#
# Here, once (downloads from PyPI into .gpu/, git-ignored through .git/info/exclude):
#   ../shared/gpu/prepare_ort_gpu.sh           # onnxruntime-gpu 1.30.0 in 52 MiB parts + 2 small wheels
#   ../shared/gpu/prepare_facephys_jax.sh      # Keras 3 + 5 wheels + open-rppg's FacePhys source/weights
#   bash reports/facephys_gpu.sh --plan        # checks the staging and sizes, prints the calls below
#
# Then, back to back (the machine goes back ~30 s after a call; /tmp survives only while it is warm):
#   calls 1..n-1: carry [".gpu/ortgpu.partNN"]   command: mkdir -p /tmp/ch && cp .gpu/ortgpu.partNN /tmp/ch/
#   call n:       carry [".gpu/ortgpu.partLAST", ".gpu/whl", ".gpu/ortgpu.sha256", ".gpu/jax"]
#                 command: bash reports/facephys_gpu.sh          (timeout_s 600)
# If the sha256 check fails (exit 3), the machine went back in between: start the transfer again.
#
# $OUT gets facephys_gpu.json (copy it to reports/, then `python reports/facephys_report.py`),
# facephys_gpu.log, optimize_cuda.json, optimize_batch.json, facephys_gpu_profile.json (the CUDA
# kernels of one frame; `bash reports/facephys_gpu.sh --profile-only` runs only that).
# Variables: FACEPHYS_ARGS (extra arguments for facephys_gpu.py), FACEPHYS_BUDGET_S (default 300),
# FACEPHYS_PROFILE_ARGS (for facephys_gpu_profile.py, e.g. --variant nhwc=prefer_nhwc=1);
# SITE, JXSITE, CH, WORK (default /tmp/site, /tmp/jxsite, /tmp/ch, /tmp/facephys) to rehearse elsewhere.
# The tree travels with every call: calls 1..n-1 (a 52 MiB part each) fit 64 MiB while it stays under
# ~12 MiB; --plan says the headroom, and `--resplit 40M` cuts the staged wheel into smaller parts.
set -uo pipefail
cd "$(dirname "$0")/.."
MIB=$((1024 * 1024))
SITE=${SITE:-/tmp/site} JXSITE=${JXSITE:-/tmp/jxsite} CH=${CH:-/tmp/ch} WORK=${WORK:-/tmp/facephys}

plan() {
  local fail=0
  [ -f .gpu/ortgpu.sha256 ] || { echo "no .gpu/ortgpu.sha256: run ../shared/gpu/prepare_ort_gpu.sh first"; return 1; }
  [ -f .gpu/jax/FacePhys_model.py ] || { echo "no .gpu/jax: run ../shared/gpu/prepare_facephys_jax.sh first"; return 1; }
  git check-ignore -q .gpu/jax || { echo ".gpu/ is not ignored: it would travel with every call"; fail=1; }
  local want got
  want=$(cut -d' ' -f1 .gpu/ortgpu.sha256)
  got=$(cat .gpu/ortgpu.part* | sha256sum | cut -d' ' -f1)
  if [ "$want" = "$got" ]; then echo "parts assemble to the staged wheel (sha256 $want)"; else echo "parts DO NOT assemble to the wheel"; fail=1; fi
  # What travels with every call: tracked and untracked-not-ignored files (64 MiB with the carried paths).
  local tree
  tree=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
  echo "working tree that travels: $((tree / 1024)) KiB"
  local parts=(.gpu/ortgpu.part*) n=${#parts[@]} i=0 size
  for p in "${parts[@]}"; do
    i=$((i + 1))
    if [ $i -lt $n ]; then
      size=$(( $(stat -c %s "$p") + tree ))
      printf '  %d. carry ["%s"]  (%d KiB with the tree%s)\n     command: mkdir -p /tmp/ch && cp %s /tmp/ch/\n' \
        $i "$p" $((size / 1024)) "$([ $size -gt $((64 * MIB)) ] && echo ', OVER 64 MiB')" "$p"
    else
      size=$(( $(du -sb "$p" .gpu/whl .gpu/ortgpu.sha256 .gpu/jax | awk '{s+=$1} END {print s}') + tree ))
      printf '  %d. carry ["%s", ".gpu/whl", ".gpu/ortgpu.sha256", ".gpu/jax"]  (%d KiB with the tree%s)\n     command: bash reports/facephys_gpu.sh   (timeout_s 600)\n' \
        $i "$p" $((size / 1024)) "$([ $size -gt $((64 * MIB)) ] && echo ', OVER 64 MiB')"
    fi
    [ $size -gt $((64 * MIB)) ] && fail=1
    [ $i -lt $n ] && { [ -z "${room:-}" ] || [ $((64 * MIB - size)) -lt "$room" ]; } && room=$((64 * MIB - size))
  done
  echo "headroom of the part-only calls under 64 MiB: $(( ${room:-0} / 1024 )) KiB (if the tree grows past it: bash reports/facephys_gpu.sh --resplit 40M)"
  return $fail
}

if [ "${1:-}" = "--plan" ]; then
  plan
  exit $?
fi
if [ "${1:-}" = "--resplit" ]; then
  wheel=.gpu/$(basename "$(awk '{print $2}' .gpu/ortgpu.sha256)")
  [ -f "$wheel" ] || { echo "no $wheel: run ../shared/gpu/prepare_ort_gpu.sh"; exit 1; }
  rm -f .gpu/ortgpu.part* && split -b "${2:-40M}" -d "$wheel" .gpu/ortgpu.part && plan
  exit $?
fi

OUT=${OUT:-/tmp/facephys-out}
mkdir -p "$CH" "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
# 1. the wheel: this call's part joins the ones earlier calls left in /tmp/ch
cp .gpu/ortgpu.part* "$CH"/ || exit 2
whl=$WORK/$(basename "$(awk '{print $2}' .gpu/ortgpu.sha256)")
cat "$CH"/ortgpu.part* > "$whl"
if ! echo "$(cut -d' ' -f1 .gpu/ortgpu.sha256)  $whl" | sha256sum -c -; then
  echo "sha256 mismatch: parts of an earlier machine are missing (it went back between calls): start the transfer again"
  ls -l "$CH"
  exit 3
fi
# 2. onnxruntime-gpu + onnxfit's missing dependencies first on the path (they shadow the CPU onnxruntime);
#    Keras and its small wheels for the JAX reference next (JAX itself is the image's)
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$whl" .gpu/whl/*.whl || exit 4
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$JXSITE" .gpu/jax/whl/*.whl || exit 4
rm -f "$whl"
export PYTHONPATH=$SITE:$JXSITE:$PWD
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
# 3. the models: onnxfit optimize --target cuda with this machine's onnxruntime (1.30), and a batched copy
model=tests/zoo/facephys/model.onnx
python3 -m onnxfit optimize "$model" -o $WORK/facephys_cuda.onnx --target cuda --json \
  > "$OUT/optimize_cuda.json" 2>&1 || echo "optimize --target cuda failed (exit $?): see optimize_cuda.json"
python3 -m onnxfit optimize "$model" -o $WORK/facephys_cuda_batch.onnx --target cuda \
  --dynamic-batch --batch-axis dt=none --json > "$OUT/optimize_batch.json" 2>&1 \
  || echo "optimize --dynamic-batch failed (exit $?): no batched figures; see optimize_batch.json"
args=(--original "$model" --jax-dir .gpu/jax --out "$OUT" --budget-s "${FACEPHYS_BUDGET_S:-300}")
[ -f $WORK/facephys_cuda.onnx ] && args+=(--optimized $WORK/facephys_cuda.onnx)
[ -f $WORK/facephys_cuda_batch.onnx ] && args+=(--batched $WORK/facephys_cuda_batch.onnx)
# 4. the measurements (writes $OUT/facephys_gpu.json after every stage), then the kernels of one frame
#    (--profile-only: the kernels alone)
rc=0
if [ "${1:-}" != "--profile-only" ]; then
  # shellcheck disable=SC2086
  python3 reports/facephys_gpu.py "${args[@]}" ${FACEPHYS_ARGS:-} 2>&1 | tee "$OUT/facephys_gpu.log"
  rc=${PIPESTATUS[0]}
fi
if [ -f $WORK/facephys_cuda.onnx ]; then
  # shellcheck disable=SC2086
  python3 reports/facephys_gpu_profile.py --model $WORK/facephys_cuda.onnx --out "$OUT" ${FACEPHYS_PROFILE_ARGS:-} 2>&1 \
    | tee "$OUT/facephys_gpu_profile.log" \
    || echo "kernel profile failed: see facephys_gpu_profile.log"
fi
ls -l "$OUT"
exit "$rc"
