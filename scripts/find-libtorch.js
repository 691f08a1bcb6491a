#!/usr/bin/env node
'use strict';
// Finds the LibTorch to build against, in this order:
//   1. LIBTORCH (a LibTorch root) or Torch_DIR (the folder holding TorchConfig.cmake)
//   2. a Python torch install (python3, or $PYTHON): torch.utils.cmake_prefix_path
//   3. the system package (Debian: apt-get install libtorch-dev)
// Prints the result as JSON, or one field with --cmake-prefix / --include / --libdir / --version /
// --openmp-cflags / --cxx-std (c++17, or c++20 that LibTorch >= 2.14 requires) / --source
// (LIBTORCH, Torch_DIR, python or system: how it was found).
// CMakeLists.txt and binding.gyp both ask this script, so there is one discovery rule.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const CONFIG_DIRS = ['share/cmake/Torch', 'lib/cmake/Torch', 'lib/x86_64-linux-gnu/cmake/Torch', 'lib/aarch64-linux-gnu/cmake/Torch'];

const HOW_TO_GET = [
  'No LibTorch found. Provide one of:',
  '  1. LIBTORCH=/path/to/libtorch (an unpacked LibTorch zip; needed for CUDA) or Torch_DIR=/path/to/share/cmake/Torch',
  "  2. a Python torch install: python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' must work (set PYTHON to choose the interpreter)",
  '  3. the system package: sudo apt-get install libtorch-dev   (Debian 12 / Ubuntu; LibTorch 1.13)',
].join('\n');

/** Turns a folder holding TorchConfig.cmake into its install prefix. */
function prefixFromConfigDir(configDir) {
  const dir = path.resolve(configDir);
  for (const tail of CONFIG_DIRS) {
    if (dir.endsWith(path.sep + tail.split('/').join(path.sep))) return dir.slice(0, dir.length - tail.length - 1);
  }
  return null;
}

function findConfigUnder(prefix) {
  for (const tail of CONFIG_DIRS) {
    const dir = path.join(prefix, tail);
    if (fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) return dir;
  }
  return null;
}

// The version defines live in torch/headeronly/version.h since LibTorch 2.10 (torch/version.h
// only includes it there), in torch/csrc/api/include/torch/version.h before.
function readHeaderVersion(prefix) {
  for (const rel of ['include/torch/headeronly/version.h', 'include/torch/csrc/api/include/torch/version.h']) {
    const file = path.join(prefix, rel);
    if (!fs.existsSync(file)) continue;
    const m = /#define\s+TORCH_VERSION\s+\\?\s*"([^"]+)"/.exec(fs.readFileSync(file, 'utf8'));
    if (m) return m[1];
  }
  return null;
}

function libDirFor(prefix, configDir) {
  // The library folder sits next to the cmake folder for lib/<arch>/cmake layouts (Debian), else prefix/lib.
  const rel = path.relative(prefix, configDir).split(path.sep);
  if (rel[0] === 'lib' && rel[1] !== 'cmake') return path.join(prefix, 'lib', rel[1]);
  return path.join(prefix, 'lib');
}

// at::parallel_for is inline OpenMP in such builds: the addon must be compiled with -fopenmp.
function atenUsesOpenMP(prefix) {
  try {
    return /define AT_PARALLEL_OPENMP 1/.test(fs.readFileSync(path.join(prefix, 'include/ATen/Config.h'), 'utf8'));
  } catch {
    return false;
  }
}

// LibTorch 2.14 and later need C++20 (ATen.h refuses older standards); before, C++17.
function cxxStandard(version) {
  const m = /^(\d+)\.(\d+)/.exec(version ?? '');
  return m && (Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 14)) ? 'c++20' : 'c++17';
}

function describe(prefix, configDir, source) {
  const version = readHeaderVersion(prefix);
  const libDir = libDirFor(prefix, configDir);
  return {
    source,
    cmakePrefix: prefix,
    configDir,
    version,
    includeDirs: [path.join(prefix, 'include'), path.join(prefix, 'include/torch/csrc/api/include')],
    libDir,
    cuda: fs.existsSync(path.join(libDir, 'libtorch_cuda.so')) || fs.existsSync(path.join(libDir, 'libc10_cuda.so')),
    openmp: atenUsesOpenMP(prefix),
    cxxStandard: cxxStandard(version),
  };
}

function fromEnv(env) {
  if (env.LIBTORCH) {
    const prefix = path.resolve(env.LIBTORCH);
    const configDir = findConfigUnder(prefix);
    if (!configDir) throw new Error(`LIBTORCH=${env.LIBTORCH} holds no TorchConfig.cmake (looked in ${CONFIG_DIRS.join(', ')})`);
    return describe(prefix, configDir, 'LIBTORCH');
  }
  if (env.Torch_DIR) {
    const configDir = path.resolve(env.Torch_DIR);
    if (!fs.existsSync(path.join(configDir, 'TorchConfig.cmake'))) throw new Error(`Torch_DIR=${env.Torch_DIR} holds no TorchConfig.cmake`);
    const prefix = prefixFromConfigDir(configDir);
    if (!prefix) throw new Error(`Torch_DIR=${env.Torch_DIR} is not in a known layout (expected <prefix>/${CONFIG_DIRS.join(' or <prefix>/')})`);
    return describe(prefix, configDir, 'Torch_DIR');
  }
  return null;
}

function fromPython(env) {
  const python = env.PYTHON || 'python3';
  let out;
  try {
    out = execFileSync(python, ['-c', 'import torch, torch.utils; print(torch.utils.cmake_prefix_path)'], {
      env, stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000,
    }).toString().trim();
  } catch {
    return null;
  }
  const configDir = path.join(out, 'Torch');
  if (!out || !fs.existsSync(path.join(configDir, 'TorchConfig.cmake'))) return null;
  const prefix = prefixFromConfigDir(configDir);
  return prefix ? { ...describe(prefix, configDir, 'python'), python } : null;
}

function fromSystem(env) {
  // U2PL_SYSTEM_PREFIXES (colon-separated) replaces the default system prefixes, e.g. for tests.
  const prefixes = env.U2PL_SYSTEM_PREFIXES !== undefined ? env.U2PL_SYSTEM_PREFIXES.split(':').filter(Boolean) : ['/usr', '/usr/local'];
  for (const prefix of prefixes) {
    const configDir = findConfigUnder(prefix);
    if (configDir) return describe(prefix, configDir, 'system');
  }
  return null;
}

function findLibTorch(env = process.env) {
  return fromEnv(env) || fromPython(env) || fromSystem(env);
}

module.exports = { findLibTorch, HOW_TO_GET };

if (require.main === module) {
  let found;
  try {
    found = findLibTorch();
  } catch (e) {
    process.stderr.write(`u2pl: ${e.message}\n`);
    process.exit(1);
  }
  if (!found) {
    process.stderr.write(`u2pl: ${HOW_TO_GET}\n`);
    process.exit(1);
  }
  const arg = process.argv[2];
  const fields = { '--cmake-prefix': found.cmakePrefix, '--include': found.includeDirs.join(' '), '--libdir': found.libDir, '--version': found.version, '--openmp-cflags': found.openmp ? '-fopenmp' : '',
    '--cxx-std': found.cxxStandard, '--source': found.source };
  if (arg && !(arg in fields)) {
    process.stderr.write(`u2pl: unknown option ${arg} (expected one of ${Object.keys(fields).join(', ')})\n`);
    process.exit(2);
  }
  process.stdout.write(arg ? `${fields[arg]}\n` : `${JSON.stringify(found, null, 2)}\n`);
}
