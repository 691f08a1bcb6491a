#!/usr/bin/env node
'use strict';
// Gets a working addon: finds LibTorch (installing Debian's libtorch-dev when none is found and we
// are root), builds native/ with cmake-js, then loads the result and prints what it runs on.
//   node scripts/setup.js            build (incremental)
//   node scripts/setup.js --rebuild  clean build
//   U2PL_NATIVE_TESTS=1 node scripts/setup.js   also the C++ tests (then: ctest --test-dir build)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibTorch, HOW_TO_GET } = require('./find-libtorch');

const root = path.resolve(__dirname, '..');

function log(message) {
  process.stdout.write(`u2pl setup: ${message}\n`);
}

function fail(message) {
  process.stderr.write(`u2pl setup: ${message}\n`);
  process.exit(1);
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.error) fail(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status}`);
}

function aptInstall(packages) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const command = `apt-get install -y ${packages.join(' ')}`;
  if (!isRoot || !has('apt-get')) {
    fail(`missing ${packages.join(', ')}. Install with:\n  sudo apt-get update && sudo ${command}\n`);
  }
  log(`installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
}

function ensureTools() {
  const missing = [];
  if (!has('cmake')) missing.push('cmake');
  if (!has('c++')) missing.push('g++');
  if (missing.length) aptInstall(missing);
}

function ensureLibTorch() {
  let found;
  try {
    found = findLibTorch();
  } catch (e) {
    fail(e.message);
  }
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !has('apt-get')) fail(HOW_TO_GET);
  // libtorch-dev alone brings the reference BLAS; OpenBLAS (OpenMP build, sharing LibTorch's threads) is much faster.
  aptInstall(['libtorch-dev', 'libopenblas0-openmp', 'libgloo-dev']);
  return findLibTorch() || fail(`libtorch-dev was installed but LibTorch is still not found.\n${HOW_TO_GET}`);
}

// The cached value of a CMake variable in build/, or null.
function cached(name) {
  try {
    const m = new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm').exec(fs.readFileSync(path.join(root, 'build', 'CMakeCache.txt'), 'utf8'));
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

function build(torch, rebuild) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  // U2PL_NATIVE_TESTS=1 also builds the C++ tests (test/native/*.cc; run them with ctest --test-dir build).
  const nativeTests = process.env.U2PL_NATIVE_TESTS === '1' ? 'ON' : 'OFF';
  const defines = [`--CDU2PL_TORCH_PREFIX=${torch.cmakePrefix}`, `--CDU2PL_TORCH_SOURCE=${torch.source}`, `--CDU2PL_NATIVE_TESTS=${nativeTests}`];
  const parallel = has('ninja') ? [] : ['--parallel', String(os.availableParallelism())];
  log(`building the addon against LibTorch ${torch.version} (found by ${torch.source}${torch.python ? ` ${torch.python}` : ''}: ${torch.cmakePrefix})`);
  // ccache (when CMake finds it) hashes paths under the package folder relative to it, so a
  // reinstall elsewhere (e.g. node_modules/u2pl of another project) reuses earlier objects.
  const env = { ...process.env, CCACHE_BASEDIR: process.env.CCACHE_BASEDIR || root };
  // cmake-js compile reconfigures only a missing build: configure again when what we pass changed
  // (another LibTorch found, native tests switched), else build incrementally.
  const stale = cached('U2PL_TORCH_PREFIX') !== torch.cmakePrefix || cached('U2PL_TORCH_SOURCE') !== torch.source ||
    (cached('U2PL_NATIVE_TESTS') ?? 'OFF') !== nativeTests;
  if (rebuild) run(process.execPath, [cmakeJs, 'rebuild', ...defines, ...parallel], { env });
  else if (stale) {
    run(process.execPath, [cmakeJs, 'configure', ...defines], { env });
    run(process.execPath, [cmakeJs, 'build', ...parallel], { env });
  } else run(process.execPath, [cmakeJs, 'compile', ...defines, ...parallel], { env });
}

function verify() {
  const probe = "const a=require('node-gyp-build')(process.argv[1]);const i=a.info();" +
    "console.log(`u2pl setup: addon ${i.addonVersion} loaded: LibTorch ${i.libtorchVersion} from ${i.libtorch.library} (${i.libtorch.source}), BLAS ${i.libtorch.blas || 'unknown'}, " +
    "distributed ${i.distributed.join(', ') || 'none (apt-get install libgloo-dev, then npx u2pl-setup)'}, CUDA ${i.cudaAvailable ? 'available' : 'not available'}, CUDA kernels ${i.cudaKernels ? 'compiled' : 'not compiled'}`);" +
    "if (/\\/blas\\/libblas/.test(i.libtorch.blas)) console.log('u2pl setup: LibTorch calls the reference BLAS, slow where oneDNN does not run (one thread): apt-get install libopenblas0-openmp');" +
    // The CPU features that decide speed, and (once the TypeScript is compiled) what runtime.autocast/channels_last auto choose.
    "const c=i.cpu;console.log(`u2pl setup: CPU ${c.model || 'unknown'}: avx2 ${c.avx2}, avx512f ${c.avx512f}, avx512_bf16 ${c.avx512Bf16}, amx_bf16 ${c.amxBf16}; oneDNN dispatches to ${c.onednnIsa || 'unknown'}`);" +
    "let p;try{p=require(require('path').join(process.argv[1],'dist/model/precision.js')).choosePrecision}catch{}" +
    "if(p){for(const d of ['cpu',...i.cudaDevices.map((_,k)=>'cuda:'+k)])console.log('u2pl setup: auto: '+p({device:d,autocast:'auto',channelsLast:'auto'},i).summary)}";
  run(process.execPath, ['-e', probe, root]);
}

function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('u2pl-setup [--rebuild]\n\nBuilds the u2pl addon against the LibTorch it finds (LIBTORCH, Torch_DIR, a Python torch, or the\n' +
      "system's libtorch-dev, installed with apt-get when missing and run as root), then loads it and\nsays what it runs on. --rebuild starts from a clean build folder; U2PL_NATIVE_TESTS=1 also builds the C++ tests.\n");
    return;
  }
  const rebuild = process.argv.includes('--rebuild');
  if (process.env.U2PL_SKIP_NATIVE_BUILD === '1') {
    log('U2PL_SKIP_NATIVE_BUILD=1: not building the addon');
    return;
  }
  ensureTools();
  const torch = ensureLibTorch();
  if (rebuild && fs.existsSync(path.join(root, 'build'))) fs.rmSync(path.join(root, 'build'), { recursive: true, force: true });
  build(torch, rebuild);
  verify();
}

main();
