import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { tempDir } from '../helpers/temp';

const script = path.join(__dirname, '../../scripts/find-libtorch.js');

function discover(env: NodeJS.ProcessEnv, arg?: string) {
  const result = spawnSync(process.execPath, arg ? [script, arg] : [script], { env, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('scripts/find-libtorch.js', () => {
  test('with an empty environment and no system install it names all three ways to get LibTorch', () => {
    const out = discover({ U2PL_SYSTEM_PREFIXES: '' });
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('No LibTorch found');
    expect(out.stderr).toContain('LIBTORCH=');
    expect(out.stderr).toContain('Torch_DIR=');
    expect(out.stderr).toContain("import torch; print(torch.utils.cmake_prefix_path)");
    expect(out.stderr).toContain('apt-get install libtorch-dev');
  });

  test('LIBTORCH pointing at a folder without TorchConfig.cmake is an error naming it', () => {
    const dir = tempDir('notorch');
    const out = discover({ LIBTORCH: dir });
    expect(out.status).toBe(1);
    expect(out.stderr).toContain(`LIBTORCH=${dir} holds no TorchConfig.cmake`);
  });

  test('LIBTORCH and Torch_DIR come before everything else and give the install prefix', () => {
    const prefix = tempDir('fake-libtorch');
    const configDir = path.join(prefix, 'share/cmake/Torch');
    fs.mkdirSync(configDir, { recursive: true });
    fs.writeFileSync(path.join(configDir, 'TorchConfig.cmake'), '# test\n');
    fs.mkdirSync(path.join(prefix, 'include/torch/csrc/api/include/torch'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'include/torch/csrc/api/include/torch/version.h'), '#define TORCH_VERSION \\\n  "2.13.0"\n');
    for (const env of [{ LIBTORCH: prefix }, { Torch_DIR: configDir }]) {
      const out = discover({ ...env, U2PL_SYSTEM_PREFIXES: '' });
      expect(out.status).toBe(0);
      const found = JSON.parse(out.stdout);
      expect(found.cmakePrefix).toBe(prefix);
      expect(found.version).toBe('2.13.0');
      expect(found.libDir).toBe(path.join(prefix, 'lib'));
      expect(discover({ ...env }, '--cmake-prefix').stdout.trim()).toBe(prefix);
      expect(found.openmp).toBe(false);
      expect(discover({ ...env }, '--cxx-std').stdout.trim()).toBe('c++17');
      expect(discover({ ...env }, '--openmp-cflags').stdout.trim()).toBe('');
    }
    // An OpenMP-built ATen: at::parallel_for is inline OpenMP, so the addon needs -fopenmp.
    fs.mkdirSync(path.join(prefix, 'include/ATen'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'include/ATen/Config.h'), '#define AT_PARALLEL_OPENMP 1\n#define AT_PARALLEL_NATIVE 0\n');
    expect(JSON.parse(discover({ LIBTORCH: prefix }).stdout).openmp).toBe(true);
    expect(discover({ LIBTORCH: prefix }, '--openmp-cflags').stdout.trim()).toBe('-fopenmp');
  });

  test('LibTorch >= 2.10 layout: the version comes from torch/headeronly/version.h', () => {
    const prefix = tempDir('fake-libtorch');
    fs.mkdirSync(path.join(prefix, 'share/cmake/Torch'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'share/cmake/Torch/TorchConfig.cmake'), '# test\n');
    fs.mkdirSync(path.join(prefix, 'include/torch/csrc/api/include/torch'), { recursive: true });
    fs.mkdirSync(path.join(prefix, 'include/torch/headeronly'), { recursive: true });
    // As 2.14 ships them: the api header only includes the header-only one.
    fs.writeFileSync(path.join(prefix, 'include/torch/csrc/api/include/torch/version.h'), '#include <torch/headeronly/version.h>\n');
    fs.writeFileSync(path.join(prefix, 'include/torch/headeronly/version.h'), '#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 14\n#define TORCH_VERSION "2.14.1"\n');
    const out = discover({ LIBTORCH: prefix, U2PL_SYSTEM_PREFIXES: '' });
    expect(out.status).toBe(0);
    expect(JSON.parse(out.stdout).version).toBe('2.14.1');
    // 2.14 refuses to compile below C++20; the builds ask for the standard here.
    expect(JSON.parse(out.stdout).cxxStandard).toBe('c++20');
    expect(discover({ LIBTORCH: prefix }, '--cxx-std').stdout.trim()).toBe('c++20');
  });

  test('finds the LibTorch this addon was built with in the normal environment', () => {
    const out = discover(process.env as Record<string, string>);
    expect(out.status).toBe(0);
    expect(JSON.parse(out.stdout).version).toMatch(/^\d+\.\d+/);
  });
});
