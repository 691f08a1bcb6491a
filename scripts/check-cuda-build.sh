#!/usr/bin/env bash
# Checks that the addon builds with its CUDA kernels, on a machine without a GPU: installs a CUDA
# PyTorch wheel (used as a LibTorch tree) and the CUDA compiler wheels from the package registry
# into a cache folder outside the repository, builds the addon and the C++ tests there with plain
# CMake + Ninja, and fails on any compiler warning, a missing CUDA object, or a symbol of u2pl.node
# that does not resolve. Prints its time.
#
#   scripts/check-cuda-build.sh [--cuda 12|13] [--torch 'torch==X'] [--cache DIR] [--jobs N] [--arch '80;90']
#
# --cuda   CUDA major version (default 13). The torch wheel must be built for it; the nvcc wheels are
#          pinned to the torch wheel's CUDA minor version.
# --torch  pip requirement of the CUDA PyTorch (default per major below).
# --cache  where wheels, the build and its logs go (default $U2PL_CUDA_CACHE, else
#          ${XDG_CACHE_HOME:-~/.cache}/u2pl/cuda-build); one sub-folder per CUDA major.
# pip's own configuration (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, pip.conf) says where wheels come from.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=$(date +%s)
major=13
torch_spec=""
cache="${U2PL_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/u2pl/cuda-build}"
jobs="$(nproc)"
arch=""  # CMakeLists.txt's default list unless --arch

die() { echo "check-cuda-build: $*" >&2; exit 1; }
log() { echo "check-cuda-build: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) major="${2:?--cuda needs 12 or 13}"; shift 2 ;;
    --torch) torch_spec="${2:?--torch needs a pip requirement}"; shift 2 ;;
    --cache) cache="${2:?--cache needs a folder}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --arch) arch="${2:?--arch needs CUDA architectures, e.g. '75;90'}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# The wheels per CUDA major. CUDA 12: PyPI's default torch 2.5-2.8 wheels are CUDA 12 builds, the
# compiler comes as *-cu12 packages (nvcc with nvvm inside). CUDA 13: torch >= 2.9 with the cu13
# wheels; the compiler is split into nvcc, crt (headers) and nvvm (cicc).
case "$major" in
  12) torch_spec="${torch_spec:-torch==2.8.0}"
      nvcc_packages=(nvidia-cuda-nvcc-cu12 nvidia-cuda-runtime-cu12 nvidia-cuda-cccl-cu12) ;;
  13) torch_spec="${torch_spec:-torch==2.14.1}"
      nvcc_packages=(nvidia-cuda-nvcc nvidia-cuda-crt nvidia-nvvm nvidia-cuda-runtime nvidia-cuda-cccl) ;;
  *) die "--cuda must be 12 or 13, got '$major'" ;;
esac

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
case "$cache/" in "$root/"*) die "the cache folder $cache is inside the repository: pass --cache elsewhere" ;; esac
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "no $python: a Python 3 with venv and pip installs the wheels (set PYTHON)"
command -v c++ >/dev/null || die "no C++ compiler (c++): apt-get install g++"
command -v node >/dev/null || die "no node: CMakeLists.txt asks node for LibTorch and the Node-API headers"
[ -d "$root/node_modules/node-addon-api" ] && [ -d "$root/node_modules/node-api-headers" ] ||
  die "node_modules lacks node-addon-api or node-api-headers: run npm ci in $root first"

work="$cache/cuda$major"
env_dir="$work/venv"
build="$work/build"
mkdir -p "$work"

# ---- 1. Wheels: torch without its Python-only dependencies (triton, cuda-bindings, sympy, ...: a
# LibTorch build needs none), the native libraries it links to, nvcc, CMake >= 3.26 (CUDA C++20) and Ninja.
stamp="$env_dir/.u2pl-installed"
want="$torch_spec ${nvcc_packages[*]}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  t0=$(date +%s)
  log "installing $torch_spec, its CUDA libraries and the CUDA $major compiler into $env_dir"
  rm -rf "$env_dir"
  "$python" -m venv "$env_dir" || die "$python -m venv failed (Debian: apt-get install python3-venv)"
  # pip's output goes to a log (shown when it fails); --no-warn-conflicts: the Python-only
  # dependencies are left out on purpose.
  pip=("$env_dir/bin/python" -m pip install --disable-pip-version-check --no-warn-conflicts)
  "${pip[@]}" --no-deps "$torch_spec" > "$work/pip.log" 2>&1 ||
    { tail -n 20 "$work/pip.log"; die "pip could not install $torch_spec for CUDA $major (is it in your package index? see --torch)"; }
  site="$("$env_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cuda_version="$(sed -n "s/^cuda[^=]*= *'\([0-9.]*\)'.*/\1/p" "$site/torch/version.py")"
  [ -n "$cuda_version" ] || die "$torch_spec is not a CUDA build (torch/version.py has no cuda version)"
  [ "${cuda_version%%.*}" = "$major" ] ||
    die "$torch_spec is built for CUDA $cuda_version, not CUDA $major: pass --torch with a CUDA $major build"
  # The native dependencies torch declares for this platform (nvidia-* and cuda-toolkit[...]), pinned as it pins them.
  mapfile -t native_deps < <("$env_dir/bin/python" - <<'EOF'
import importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement
for text in md.requires("torch") or []:
    r = Requirement(text)
    if (r.name.startswith("nvidia-") or r.name == "cuda-toolkit") and (r.marker is None or r.marker.evaluate({"extra": ""})):
        print(str(r).split(";")[0].strip())
EOF
  )
  minor_pins=()
  for p in "${nvcc_packages[@]}"; do minor_pins+=("$p==$cuda_version.*"); done
  "${pip[@]}" "${native_deps[@]}" "${minor_pins[@]}" "cmake>=3.26" ninja >> "$work/pip.log" 2>&1 ||
    { tail -n 20 "$work/pip.log"; die "pip could not install the CUDA $cuda_version libraries or compiler (${minor_pins[*]})"; }
  echo "$want" > "$stamp"
  log "installed in $(( $(date +%s) - t0 )) s ($(du -sh "$env_dir" | cut -f1))"
fi
site="$("$env_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cuda_version="$(sed -n "s/^cuda[^=]*= *'\([0-9.]*\)'.*/\1/p" "$site/torch/version.py")"

# ---- 2. A CUDA toolkit tree from the wheels. nvcc reads bin/nvcc.profile beside its real path and
# expects include/, lib64/ and nvvm/ above it; CMake's FindCUDAToolkit and torch's FindCUDNN want
# unversioned .so names. The wheels spread these over nvidia/<package>/ (CUDA 12) or nvidia/cu13/:
# bin/ is hard-linked (so nvcc's own path is in the tree), everything else symlinked.
toolkit="$work/toolkit"
rm -rf "$toolkit"
mkdir -p "$toolkit/include" "$toolkit/lib"
nvcc_dir="$(dirname "$(ls "$site"/nvidia/*/bin/nvcc 2>/dev/null | head -n1)")"
[ -x "$nvcc_dir/nvcc" ] || die "no nvcc in the installed wheels (${nvcc_packages[*]})"
cp -al "$nvcc_dir" "$toolkit/bin"
for pkg in "$site"/nvidia/*/; do
  [ -d "$pkg/nvvm" ] && [ ! -e "$toolkit/nvvm" ] && ln -s "$pkg/nvvm" "$toolkit/nvvm"
  for sub in include lib; do
    [ -d "$pkg/$sub" ] || continue
    for entry in "$pkg/$sub"/*; do
      [ -e "$toolkit/$sub/$(basename "$entry")" ] || ln -s "$entry" "$toolkit/$sub/"
    done
  done
done
[ -d "$toolkit/nvvm" ] || die "no nvvm (cicc) in the installed wheels"
for so in "$toolkit"/lib/lib*.so.*; do
  base="${so##*/}"; base="${base%%.so.*}.so"
  [ -e "$toolkit/lib/$base" ] || ln -s "$(basename "$so")" "$toolkit/lib/$base"
done
ln -s lib "$toolkit/lib64"
"$toolkit/bin/nvcc" --version | tail -n2 | head -n1

# ---- 3. Configure and build (addon + C++ tests) from scratch, so that every compile's warnings are
# seen (ccache, when present, replays them with its hits); niced: this machine is shared.
export PATH="$toolkit/bin:$env_dir/bin:$PATH"
export CUDA_HOME="$toolkit" CUDA_PATH="$toolkit" CUDACXX="$toolkit/bin/nvcc"
export LIBTORCH="$site/torch"
export CCACHE_BASEDIR="$root"
rm -rf "$build"
mkdir -p "$build"
t0=$(date +%s)
log "configuring against LibTorch $(node "$root/scripts/find-libtorch.js" --version) (CUDA $cuda_version) in $build"
nice -n 15 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DU2PL_NATIVE_TESTS=ON \
  -DCMAKE_CUDA_COMPILER="$toolkit/bin/nvcc" -DCUDAToolkit_ROOT="$toolkit" ${arch:+-DCMAKE_CUDA_ARCHITECTURES="$arch"} \
  > "$work/configure.log" 2>&1 || { tail -n 40 "$work/configure.log"; die "configure failed (log: $work/configure.log)"; }
log "building with $jobs jobs"
nice -n 15 cmake --build "$build" -j "$jobs" > "$work/build.log" 2>&1 ||
  { grep -A12 "^FAILED" "$work/build.log" | head -n 60 || true; die "build failed (log: $work/build.log)"; }
build_s=$(( $(date +%s) - t0 ))

# ---- 4. What must hold.
failures=0
check() { if eval "$2"; then log "ok   $1"; else log "FAIL $1"; failures=$((failures + 1)); fi; }
# Warnings: the compilers' (gcc's "warning:", nvcc's "warning #"), and CMake's from our CMakeLists.txt
# (TorchConfig's own, e.g. "library kineto not found" of the pip wheels, are shown, not counted).
warnings="$(grep -E "warning[: #]" "$work/build.log" | sort -u || true)"
cmake_warnings="$(grep -A4 "^CMake Warning.* at CMakeLists.txt" "$work/configure.log" || true)"
grep -A1 "^CMake Warning" "$work/configure.log" | grep -v "^CMake Warning\|^--" | sed 's/^ */check-cuda-build: note: LibTorch'"'"'s CMake config says: /' || true
check "no compiler warnings" '[ -z "$warnings" ] || { echo "$warnings" | head -n 40; false; }'
check "no CMake warnings from CMakeLists.txt" '[ -z "$cmake_warnings" ] || { echo "$cmake_warnings" | head -n 40; false; }'
addon="$build/Release/u2pl.node"
check "u2pl.node was built" '[ -f "$addon" ]'
check "the CUDA kernels are in u2pl.node (host stubs and device code)" \
  'nm -C "$addon" | grep -c " T u2pl::loss::cuda::" >/dev/null && objdump -h "$addon" | grep -c "\.nv_fatbin" >/dev/null'
# Every symbol resolves: load it with immediate binding (LD_BIND_NOW) into node, as require() does.
info="$(LD_BIND_NOW=1 node -e "const i=require(process.argv[1]).info(); console.log(JSON.stringify({v:i.libtorchVersion,k:i.cudaKernels,c:i.cudaAvailable,d:i.distributed}))" "$addon" 2>&1)" || true
check "u2pl.node loads with every symbol bound: $info" 'echo "$info" | grep -c "\"k\":true" >/dev/null'
for t in "$build"/loss_kernels "$build"/sgd; do
  name="$(basename "$t")"
  check "C++ test $name (CPU parts; CUDA parts need a GPU)" 'LD_BIND_NOW=1 "$t" > "$work/$name.log" 2>&1 || { tail -n 20 "$work/$name.log"; false; }'
done

total=$(( $(date +%s) - started ))
log "CUDA $cuda_version, $torch_spec: build ${build_s} s, total ${total} s (logs in $work)"
[ "$failures" -eq 0 ] || die "$failures check(s) failed"
log "passed"
