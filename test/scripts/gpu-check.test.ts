/**
 * The offline bundle and the GPU check as a GPU machine gets them: scripts/offline-bundle.sh makes
 * the bundle (at most 60 MB), it is copied into a fresh folder, and its gpu-check.sh --cpu-only runs
 * there on this machine's python3 torch: the addon built from the bundle's sources with plain
 * CMake, the C++ tests, data-parallel training (gloo), resume, and the step bench's both sides.
 * It compiles the addon: minutes the first time, about 2 minutes with ccache's hits afterwards.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { describeWithPython, pythonWithTorch } from '../helpers/python';
import { tempDir } from '../helpers/temp';

const root = path.join(__dirname, '../..');
const gpuCheck = path.join(root, 'scripts/gpu-check.sh');

function bash(args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 60000) {
  const r = spawnSync('bash', args, { encoding: 'utf8', env, timeout, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('scripts/gpu-check.sh: bad input names what is missing (exit 2)', () => {
  // A folder that looks like a bundle: the checks of the machine come before unpacking it.
  const fakeBundle = () => {
    const dir = tempDir('fake-bundle');
    fs.writeFileSync(path.join(dir, 'u2pl-0.0.0-linux-x64.tar.xz'), '');
    return dir;
  };

  test('no bundle folder, or one without the archive', () => {
    const missing = path.join(tempDir('gpu-check'), 'nowhere');
    let r = bash([gpuCheck, '--bundle', missing]);
    expect(r.status).toBe(2);
    expect(r.out).toContain(`the bundle folder ${missing} does not exist`);
    r = bash([gpuCheck, '--bundle', tempDir('empty-bundle')]);
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/holds no u2pl-\*-linux-x64\.tar\.xz .*offline-bundle\.sh/);
    r = bash([gpuCheck, '--frobnicate']);
    expect([r.status, r.out]).toEqual([2, expect.stringContaining("unknown argument '--frobnicate'")]);
  });

  test('a Python without torch', () => {
    const fake = path.join(tempDir('python'), 'python3');
    fs.writeFileSync(fake, '#!/bin/sh\necho "ModuleNotFoundError: No module named torch" >&2\nexit 1\n', { mode: 0o755 });
    const r = bash([gpuCheck, '--bundle', fakeBundle(), '--python', fake]);
    expect(r.status).toBe(2);
    expect(r.out).toContain(`${fake} cannot import torch`);
    const none = bash([gpuCheck, '--bundle', fakeBundle(), '--python', '/nonexistent/python3']);
    expect([none.status, none.out]).toEqual([2, expect.stringContaining('no /nonexistent/python3')]);
  });

  const python = pythonWithTorch();
  (python ? test : test.skip)('the GPU check on a CPU torch and without nvcc: both named, and --cpu-only suggested', () => {
    const r = bash([gpuCheck, '--bundle', fakeBundle(), '--python', python as string], { ...process.env, CUDACXX: '/nonexistent/nvcc' });
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/missing: a CUDA PyTorch \(.* a CPU build; or --cpu-only\); nvcc at CUDACXX=\/nonexistent\/nvcc/);
  });
});

describeWithPython('gpu-check.js: the summary as the parts go', () => {
  test('written before the first part and after each; a part the budget does not reach is named', () => {
    const out = tempDir('gpu-check-out');
    const r = spawnSync(process.execPath, [path.join(root, 'scripts/gpu-check.js'), '--cpu-only', '--only', 'distributed,resume', '--budget', '3',
      '--out', out, '--work', tempDir('gpu-check-work')], { encoding: 'utf8', env: { ...process.env, PYTHON: pythonWithTorch() as string }, timeout: 60000 });
    expect(r.status).toBe(1);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect([summary.passed, summary.finished, summary.waiting]).toEqual([false, true, []]);
    expect(summary.parts.map((p: { name: string; status: string; summary: string }) => [p.name, p.status, p.summary]))
      .toEqual(['distributed', 'resume'].map((name) => [name, 'skipped', 'the 3 s budget is spent']));
    expect(fs.readFileSync(path.join(out, 'summary.txt'), 'utf8')).toMatch(/cpu-only check .*; FAILED after \d+ s\n\ndistributed +skipped/);
  });
});

describeWithPython('offline bundle + gpu-check.sh --cpu-only in a fresh folder', () => {
  test('the bundle is at most 60 MB and every CPU part of the check passes', () => {
    const made = tempDir('bundle');
    const bundle = bash([path.join(root, 'scripts/offline-bundle.sh'), made], process.env, 15 * 60000);
    expect([bundle.status, bundle.out.slice(-2000)]).toEqual([0, expect.stringMatching(/offline-bundle: .* MB/)]);
    const files = fs.readdirSync(made).sort();
    expect(files).toEqual(['README.txt', 'gpu-check.sh', expect.stringMatching(/^u2pl-.*-linux-x64\.tar\.xz$/)]);
    const bytes = files.reduce((n, f) => n + fs.statSync(path.join(made, f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(60e6);

    // As on the GPU machine: the folder copied elsewhere and the check run from it, with this machine's
    // node and npm shadowed by failing stubs (it brings its own Node.js and builds with CMake straight).
    const fresh = tempDir('gpu-machine');
    for (const f of files) fs.copyFileSync(path.join(made, f), path.join(fresh, f));
    const stubs = path.join(fresh, 'no-node');
    fs.mkdirSync(stubs);
    for (const tool of ['node', 'npm', 'npx']) fs.writeFileSync(path.join(stubs, tool), `#!/bin/sh\necho "${tool} is not on this machine" >&2\nexit 97\n`, { mode: 0o755 });
    const out = path.join(fresh, 'out');
    const r = bash([path.join(fresh, 'gpu-check.sh'), '--cpu-only', '--python', pythonWithTorch() as string, '--out', out, '--budget', '2400'],
      { ...process.env, PATH: `${stubs}:${process.env.PATH}` }, 45 * 60000);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    const parts = summary.parts.map((p: { name: string; status: string; summary: string }) => [p.name, p.status, p.summary]);
    expect(parts).toEqual(['build', 'kernels', 'distributed', 'resume', 'bench'].map((name) => [name, 'passed', expect.any(String)]));
    expect(r.status).toBe(0);
    expect([summary.mode, summary.finished, summary.waiting]).toEqual(['cpu-only', true, []]);
    expect(summary.bundle.version).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(parts[3][2]).toMatch(/8 steps = 4 \+ resume \+ 4: .*bit-equal/);
    expect(fs.readFileSync(path.join(out, 'summary.txt'), 'utf8')).toMatch(/cpu-only check .* PASSED/);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'bench.json'), 'utf8')).map((m: { impl: string }) => m.impl))
      .toEqual(expect.arrayContaining(['u2pl', expect.stringMatching(/^python-torch-/)]));
  }, 60 * 60000);
});
