#!/usr/bin/env bash
# Prepares, on a machine with network, one folder that installs and checks u2pl on a machine without
# network and without Node.js (a cluster's GPU node): what that machine must have is Python with
# PyTorch (CUDA build for the GPU parts), a C++ compiler, CMake, Ninja (optional) and, for the CUDA
# kernels, nvcc. The folder holds:
#   u2pl-<version>-linux-x64.tar.xz   Node.js (this machine's node, linux-x64, >= 20), the package as
#                                     npm packs it plus its production dependencies, the compiled
#                                     TypeScript (dist/, dist-bench/), the C++ tests and bench/python
#   gpu-check.sh                      unpacks it, builds the addon there and checks the machine
#   README.txt                        how to use it
#
#   scripts/offline-bundle.sh DIR      (at most 60 MB; NODE=/path/to/node picks another Node binary)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
limit_bytes=60000000
die() { echo "offline-bundle: $*" >&2; exit 1; }
log() { echo "offline-bundle: $*"; }

[ $# -eq 1 ] && [ "${1#-}" = "$1" ] || die "usage: scripts/offline-bundle.sh DIR"
out="$1"
node="${NODE:-$(command -v node || true)}"
[ -n "$node" ] && [ -x "$node" ] || die "no node: the bundle carries this machine's Node.js (set NODE=/path/to/node)"
node="$("$node" -p process.execPath)"
target="$("$node" -p '`${process.platform}-${process.arch} ${process.versions.node.split(".")[0]}`')"
[ "${target% *}" = "linux-x64" ] || die "$node is a ${target% *} build; the bundle needs linux-x64"
[ "${target#* }" -ge 20 ] || die "$node is Node ${target#* }; u2pl needs Node >= 20"
command -v npm >/dev/null || die "no npm: the production dependencies are installed with npm ci"
command -v xz >/dev/null || die "no xz: the bundle is a .tar.xz (apt-get install xz-utils)"
[ -x "$root/node_modules/.bin/tsc" ] || die "no TypeScript compiler: run npm ci in $root first"

version="$("$node" -p "require('$root/package.json').version")"
name="u2pl-$version-linux-x64"
started=$(date +%s)
stage="$(mktemp -d "${TMPDIR:-/tmp}/u2pl-bundle-XXXXXX")"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/$name/package"
mkdir -p "$pkg" "$stage/$name/node/bin"

# 1. The package's files as npm packs them (dist/ is compiled below from these very sources), plus what
# the check needs beyond an install: the lock file, the C++ tests, the bench's Python side, the check.
mapfile -t files < <(cd "$root" && npm pack --dry-run --json --ignore-scripts 2>/dev/null |
  "$node" -e "for (const f of JSON.parse(require('fs').readFileSync(0, 'utf8'))[0].files) if (!f.path.startsWith('dist/')) console.log(f.path)")
[ "${#files[@]}" -gt 0 ] || die "npm pack --dry-run listed no files"
extras=(package-lock.json scripts/gpu-check.sh scripts/gpu-check.js)
for f in test/native/*.cc bench/python/*.py; do extras+=("$f"); done
(cd "$root" && tar -cf - "${files[@]}" "${extras[@]}") | tar -xf - -C "$pkg"

# 2. The compiled TypeScript: the library and command line (dist/), the bench (dist-bench/).
"$node" "$root/node_modules/.bin/tsc" -p "$root/tsconfig.json" --outDir "$pkg/dist" --sourceMap false
"$node" "$root/node_modules/.bin/tsc" -p "$root/bench/tsconfig.json" --outDir "$pkg/dist-bench" --sourceMap false

# 3. The production dependencies, as the lock file pins them (no install scripts: the addon is built
# on the target machine, and sharp's prebuilt libvips comes as a package).
(cd "$pkg" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) || die "npm ci --omit=dev failed in $pkg"

# 4. Node.js: one binary (it links only glibc and libstdc++).
cp "$node" "$stage/$name/node/bin/node"
for doc in /usr/share/doc/nodejs/copyright "$(dirname "$node")/../LICENSE"; do
  [ -f "$doc" ] && cp "$doc" "$stage/$name/node/LICENSE" && break
done
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git -C "$root" status --porcelain 2>/dev/null)" ] || commit="$commit+changes"
cat > "$stage/$name/BUNDLE.json" <<EOF
{ "name": "u2pl", "version": "$version", "commit": "$commit", "node": "$("$node" --version)", "platform": "linux-x64", "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)" }
EOF

# 5. One archive, and the script and notes beside it.
mkdir -p "$out"
rm -f "$out"/u2pl-*-linux-x64.tar.xz "$out/gpu-check.sh" "$out/README.txt"
# xz -3: half the time of the default -6 for about a tenth more bytes (well under the 60 MB budget).
tar -C "$stage" -cf - "$name" | nice -n 15 xz -T0 -3 > "$out/$name.tar.xz.part"
mv "$out/$name.tar.xz.part" "$out/$name.tar.xz"
cp "$root/scripts/gpu-check.sh" "$out/gpu-check.sh"
cat > "$out/README.txt" <<EOF
u2pl $version ($commit) for linux-x64, with Node.js $("$node" --version). Needs on the target machine:
python3 with torch (a CUDA build for the GPU parts), a C++17/20 compiler, CMake >= 3.19 (>= 3.26 for
LibTorch >= 2.14 with CUDA), Ninja (optional), nvcc for the CUDA kernels.

Check a GPU machine (about 8 minutes; writes summary.json and summary.txt into OUT):
  bash gpu-check.sh --out OUT
Install for use (builds the addon into WORK, then WORK/bin/u2pl-train etc. run it):
  bash gpu-check.sh --work WORK --only build
bash gpu-check.sh --help lists the options.
EOF
size=$(du -cb "$out/$name.tar.xz" "$out/gpu-check.sh" "$out/README.txt" | tail -n1 | cut -f1)
log "$out: $(( size / 1000000 )) MB ($size bytes) in $(( $(date +%s) - started )) s"
[ "$size" -le "$limit_bytes" ] || die "the bundle is $size bytes, over the $limit_bytes limit"
