#!/usr/bin/env node
'use strict';
// Lists the C++ sources of the addon for binding.gyp (CMakeLists.txt globs the same folders).
// CUDA sources (.cu) are left to the CMake build.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const folders = ['addon', 'model', 'loss', 'ael', 'io', 'train', 'data', 'util'];

function walk(dir, out) {
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'cuda') walk(full, out);
    else if (entry.isFile() && entry.name.endsWith('.cc')) out.push(path.relative(root, full));
  }
  return out;
}

const sources = folders.flatMap((folder) => walk(path.join(root, 'native', folder), []));
process.stdout.write(`${sources.join(' ')}\n`);
