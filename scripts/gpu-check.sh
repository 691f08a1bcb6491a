#!/usr/bin/env bash
# Checks a GPU machine in one command, without network and without Node.js: unpacks the bundle that
# scripts/offline-bundle.sh made (Node.js, the package, its dependencies), builds the addon against
# this machine's PyTorch (python3) and runs the parts of scripts/gpu-check.js: build + info(), the
# C++ kernel tests, data-parallel training on NCCL, a short U2PL run with resume, the step bench
# against PyTorch. Writes OUT/summary.json and OUT/summary.txt; a failing part is reported and the
# next one runs. Exit status: 0 all parts passed, 1 some part failed, 2 bad input.
#
#   bash gpu-check.sh [--bundle DIR] [--out DIR] [--work DIR] [--cpu-only] [--only PARTS] [--python PY]
#                     [--jobs N] [--budget SECONDS] [--bench-args "ARGS"]
#
# --bundle  the folder offline-bundle.sh wrote (default: this script's folder when it holds the archive)
# --out     where the summary and logs go (default ./gpu-check-out)
# --work    where the bundle is unpacked and built (default: a temporary folder, removed at the end);
#           a folder given here is kept: WORK/bin/u2pl-train etc. then run the installed package
# --cpu-only  the parts that run without a GPU, on the CPU (gloo instead of NCCL; a short bench)
# --only    a comma-separated subset of: build,kernels,distributed,resume,bench
# --python  the Python with torch to build against and to bench (default python3)
# --budget  seconds for the whole check (default 480); the bench gets what is left
# --bench-args  added to the bench's command line, to narrow it to a short call
#           (e.g. "--recipe camvid-small --precision bf16+cl --quick")
# OUT/summary.json and summary.txt are rewritten after every part: a check cut off by whoever runs
# it still leaves the parts it finished.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle=""
out="$PWD/gpu-check-out"
work=""
python="python3"
cpu_only=0
pass=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
bad() { echo "gpu-check: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="${2:?--bundle needs a folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --work) work="${2:?--work needs a folder}"; shift 2 ;;
    --python) python="${2:?--python needs an interpreter}"; shift 2 ;;
    --cpu-only) cpu_only=1; pass+=("$1"); shift ;;
    --only|--jobs|--budget|--bench-args) pass+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) bad "unknown argument '$1' (see --help)" ;;
  esac
done

# ---- What this machine must have (each missing thing named) ---------------------------------------
if [ -z "$bundle" ]; then
  ls "$here"/u2pl-*-linux-x64.tar.xz >/dev/null 2>&1 ||
    bad "no bundle: pass --bundle DIR, a folder made by scripts/offline-bundle.sh DIR on a machine with network"
  bundle="$here"
fi
[ -d "$bundle" ] || bad "the bundle folder $bundle does not exist (make it with scripts/offline-bundle.sh DIR)"
archives=("$bundle"/u2pl-*-linux-x64.tar.xz)
[ -f "${archives[0]}" ] || bad "$bundle holds no u2pl-*-linux-x64.tar.xz (make it with scripts/offline-bundle.sh DIR)"
[ "${#archives[@]}" -eq 1 ] || bad "$bundle holds several bundles: ${archives[*]}"
archive="${archives[0]}"
[ "$(uname -sm)" = "Linux x86_64" ] || bad "the bundle's Node.js is for Linux x86_64, this is $(uname -sm)"

missing=()
command -v "$python" >/dev/null || bad "no $python: a Python with torch is needed (--python PY)"
torch_line="$("$python" -c 'import torch; print(torch.__version__, torch.version.cuda or "none", int(torch.cuda.is_available()), torch.cuda.device_count())' 2>/dev/null)" ||
  bad "$python cannot import torch: install PyTorch for it, or pass --python PY"
read -r torch_version torch_cuda cuda_ok device_count <<< "$torch_line"
command -v cmake >/dev/null || missing+=("cmake")
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++ compiler (c++ or g++)")
if [ "$cpu_only" = 0 ]; then
  [ "$torch_cuda" != none ] || missing+=("a CUDA PyTorch ($python has torch $torch_version, a CPU build; or --cpu-only)")
  [ "$cuda_ok" = 1 ] || [ "$torch_cuda" = none ] || missing+=("a visible GPU (torch $torch_version sees none; or --cpu-only)")
  # nvcc: CUDACXX, else PATH, else the usual install folder.
  if [ -n "${CUDACXX:-}" ]; then
    [ -x "$CUDACXX" ] || missing+=("nvcc at CUDACXX=$CUDACXX")
  elif ! command -v nvcc >/dev/null; then
    if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; else missing+=("nvcc (the CUDA compiler: on PATH, in /usr/local/cuda/bin, or CUDACXX)"); fi
  fi
  # Kernels compiled by one CUDA major against a torch of another would load two CUDA runtimes.
  nvcc_bin="${CUDACXX:-$(command -v nvcc || true)}"
  if [ -x "$nvcc_bin" ] && [ "$torch_cuda" != none ]; then
    nvcc_version="$("$nvcc_bin" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
    [ "${nvcc_version%%.*}" = "${torch_cuda%%.*}" ] ||
      missing+=("an nvcc for CUDA ${torch_cuda%%.*} (torch $torch_version is built for CUDA $torch_cuda; $nvcc_bin is CUDA $nvcc_version)")
  fi
fi
[ "${#missing[@]}" -eq 0 ] || bad "missing: $(printf '%s; ' "${missing[@]}" | sed 's/; $//')"
command -v ninja >/dev/null || echo "gpu-check: no ninja: building with make"
"$python" -c 'import numpy' 2>/dev/null || echo "gpu-check: $python has no numpy: the bench's PyTorch side (bench/python) will fail"

# ---- Unpack ----------------------------------------------------------------------------------------
keep=1
if [ -z "$work" ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/u2pl-gpu-check-XXXXXX")"
  keep=0
fi
mkdir -p "$work" "$out"
work="$(cd "$work" && pwd)"
out="$(cd "$out" && pwd)"
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
name="$(basename "$archive" .tar.xz)"
t0=$(date +%s)
if [ ! -x "$work/$name/node/bin/node" ] || [ "$archive" -nt "$work/$name/BUNDLE.json" ]; then
  rm -rf "${work:?}/$name"
  if command -v xz >/dev/null; then
    tar -C "$work" -xJf "$archive"
  else  # no xz binary: Python's lzma reads it
    "$python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$archive" "$work"
  fi
fi
echo "gpu-check: $name unpacked in $work ($(( $(date +%s) - t0 )) s); torch $torch_version (CUDA $torch_cuda, $device_count GPUs) from $python"

# The rest is JavaScript on the bundle's Node.js (on PATH: CMakeLists.txt runs node too).
export PATH="$work/$name/node/bin:$PATH"
export PYTHON="$python"
status=0
node "$work/$name/package/scripts/gpu-check.js" --out "$out" --work "$work" "${pass[@]}" || status=$?
exit "$status"
