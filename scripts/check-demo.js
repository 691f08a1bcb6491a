#!/usr/bin/env node
'use strict';
// After `u2pl-train experiments/demo`: U2PL's best validation mIoU must be above the
// supervised-only baseline's (the demo's promise). Prints both; exits 1 otherwise.
const fs = require('fs');
const path = require('path');

const demo = path.resolve(__dirname, '../experiments/demo');
function best(name) {
  const file = path.join(demo, name, 'checkpoints/metrics.jsonl');
  if (!fs.existsSync(file)) throw new Error(`${file} not found: run npm run demo first`);
  const epochs = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'epoch' && r.miou !== null);
  return Math.max(...epochs.map((e) => e.miou));
}
const sup = best('suponly');
const u2pl = best('u2pl');
process.stdout.write(`demo: supervised-only best mIoU ${(100 * sup).toFixed(2)}, U2PL best mIoU ${(100 * u2pl).toFixed(2)}\n`);
if (!(u2pl > sup)) {
  process.stderr.write('demo: U2PL did not beat the supervised-only baseline\n');
  process.exit(1);
}
