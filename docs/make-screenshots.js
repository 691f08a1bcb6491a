#!/usr/bin/env node
/**
 * Makes the README's screenshots of report.html and u2pl-report (docs/report.png,
 * docs/report-u2pl.png, docs/compare.png) from runs of the procedural demo, never from CamVid (its
 * licence). Needs the compiled package (npm run build:ts), the addon and Debian's chromium.
 *
 *   node docs/make-screenshots.js                 # trains the demo with seeds 2 and 3 (about 25 min on 2 idle cores)
 *   node docs/make-screenshots.js --runs DIR      # DIR/{suponly,u2pl}/checkpoints/seed-N from an earlier call
 *
 * The runs are experiments/demo's, with trainer.pseudo_label_metrics on for U2PL (the procedural
 * unlabeled images have labels on disk), so that the report shows the pseudo-labels' accuracy.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const dist = (p) => require(path.join(root, 'dist', p));
const sharp = require('sharp');

async function trainDemo(runs, seeds) {
  const { loadConfig } = dist('config/config');
  const { train } = dist('train/train');
  for (const variant of ['u2pl', 'suponly']) {
    fs.mkdirSync(path.join(runs, variant), { recursive: true });
    fs.copyFileSync(path.join(root, 'experiments/demo', variant, 'config.yaml'), path.join(runs, variant, 'config.yaml'));
  }
  for (const seed of seeds) {
    for (const variant of ['u2pl', 'suponly']) {
      const c = loadConfig(path.join(runs, variant));
      c.seed = seed;
      c.saver.snapshotDir = path.join(runs, variant, 'checkpoints', `seed-${seed}`);
      c.trainer.pseudoLabelMetrics = c.dataset.semi;
      const t0 = Date.now();
      const r = await train(c, {});
      console.log(`${variant} seed ${seed}: mIoU ${(100 * r.lastMiou).toFixed(1)} in ${((Date.now() - t0) / 60000).toFixed(1)} min`);
    }
  }
}

/** A PNG for the README: at most `width` wide, 256 colours (a tenth of a full-colour screenshot). */
async function save(buffer, file, width = 1100) {
  await sharp(buffer).resize({ width, withoutEnlargement: true }).png({ palette: true, colours: 256, effort: 10 }).toFile(file);
  console.log(`${path.relative(root, file)}: ${(fs.statSync(file).size / 1024).toFixed(0)} KB`);
}

async function main() {
  const args = process.argv.slice(2);
  const runsFlag = args.indexOf('--runs');
  let runs = runsFlag >= 0 ? path.resolve(args[runsFlag + 1]) : undefined;
  if (!runs) {
    runs = fs.mkdtempSync(path.join(os.tmpdir(), 'u2pl-screenshots-'));
    await trainDemo(runs, [2, 3]);
  }
  const { reportMain } = dist('cli/report');
  const compare = path.join(runs, 'compare.html');
  const io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), tty: false };
  const code = await reportMain([path.join(runs, 'suponly'), path.join(runs, 'u2pl'), '--out', compare, '--title', 'u2pl-report: the procedural demo, supervised-only vs U2PL'], io);
  if (code !== 0) throw new Error(`u2pl-report exited with ${code}`);

  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.U2PL_CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const report = path.join(runs, 'u2pl/checkpoints/seed-2/report.html');
    await page.goto(`file://${report}`);
    // The top (at a glance, validation, curves) and the U2PL section with the method.
    const top = await page.evaluate(() => document.querySelector('#u2pl').getBoundingClientRect().top + window.scrollY);
    await save(await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.min(top, 2300) } }), path.join(root, 'docs/report.png'));
    const [from, to] = await page.evaluate(() => [document.querySelector('#u2pl'), document.querySelector('#samples')].map((e) => e.getBoundingClientRect().top + window.scrollY));
    await save(await page.screenshot({ fullPage: true, clip: { x: 0, y: from - 8, width: 1280, height: Math.min(to - from, 2400) } }), path.join(root, 'docs/report-u2pl.png'));
    await page.goto(`file://${compare}`);
    const runsTop = await page.evaluate(() => document.querySelector('#runs').getBoundingClientRect().top + window.scrollY);
    await save(await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.min(runsTop, 2300) } }), path.join(root, 'docs/compare.png'));
  } finally {
    await browser.close();
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
