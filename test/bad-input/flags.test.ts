/** Bad flags and arguments: one line naming the flag and what was expected, exit 2, before any work. */
import fs from 'fs';
import path from 'path';
import { dataMain } from '../../lib/cli/data';
import { evalMain } from '../../lib/cli/eval';
import { inferMain } from '../../lib/cli/infer';
import { trainMain } from '../../lib/cli/train';
import { expectOneLineInputError, runTool } from '../helpers/cli';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { tempDir } from '../helpers/temp';

const exp = writeExperiment(tinyConfig(false));

describe('u2pl-train flags', () => {
  test.each([
    [['--max-steps', 'abc'], /--max-steps: expected an integer >= 1, got 'abc'/],
    [['--max-steps', '0'], /--max-steps: expected an integer >= 1, got '0'/],
    [['--max-steps', '-5'], /--max-steps: expected an integer >= 1, got '-5'/],
    [['--max-steps', '2.5'], /--max-steps: expected an integer >= 1, got '2.5'/],
    [['--threads', '0'], /--threads: expected an integer >= 1, got '0'/],
    [['--threads', 'abc'], /--threads: expected an integer >= 1, got 'abc'/],
    [['--threads', '-1'], /--threads: expected an integer >= 1, got '-1'/],
    [['--threads'], /Not enough arguments following: threads/],
    [['--bogus'], /Unknown argument: bogus \(see u2pl-train --help\)/],
    [['--resume', 'no-such.pth'], /no-such\.pth: --resume: no such checkpoint/],
  ])('%j', async (args, pattern) => {
    expectOneLineInputError(await runTool('u2pl-train', trainMain, [exp, ...args]), pattern);
  });

  test('a folder that does not exist, and one without a config', async () => {
    expectOneLineInputError(await runTool('u2pl-train', trainMain, [path.join(exp, 'nope')]), /nope: no such file or folder/);
    const empty = tempDir('empty');
    expectOneLineInputError(await runTool('u2pl-train', trainMain, [empty]), /no config\.yaml here or in its sub-folders/);
  });

  test('a config that is not YAML, and one with a wrong type: the file and key are named', async () => {
    const dir = tempDir('badyaml');
    fs.writeFileSync(path.join(dir, 'config.yaml'), 'dataset: [unclosed\n');
    expectOneLineInputError(await runTool('u2pl-train', trainMain, [dir]), /config\.yaml: not valid YAML/);
    fs.writeFileSync(path.join(dir, 'config.yaml'), 'dataset: { type: pascal, train: {} }\n');
    expectOneLineInputError(await runTool('u2pl-train', trainMain, [dir]), /config\.yaml: dataset\.train\.data_root: required/);
  });
});

describe('u2pl-eval flags', () => {
  test.each([
    [['--mode', 'slide', '--crop', '0'], /--crop: expected an integer >= 1, got '0'/],
    [['--crop', '-5'], /--crop: expected an integer >= 1, got '-5'/],
    [['--scales', 'abc'], /--scales: expected comma-separated positive numbers .*got 'abc'/],
    [['--scales', '1,,2'], /--scales: expected comma-separated positive numbers/],
    [['--scales', '0'], /--scales: expected comma-separated positive numbers/],
    [['--base-size', '-1'], /--base-size: expected an integer >= 0, got '-1'/],
    [['--mode', 'diagonal'], /Invalid values:.*mode.*diagonal/s],
    [['--checkpoint', 'missing.pth'], /missing\.pth: --checkpoint: no such file/],
    [['--list', 'missing.txt'], /missing\.txt: --list: no such file/],
    [['--threads', '1.5'], /--threads: expected an integer >= 1, got '1\.5'/],
  ])('%j', async (args, pattern) => {
    expectOneLineInputError(await runTool('u2pl-eval', evalMain, [exp, ...args]), pattern);
  });

  test('no checkpoint in the run folder yet', async () => {
    expectOneLineInputError(await runTool('u2pl-eval', evalMain, [writeExperiment(tinyConfig(false))]), /checkpoints: no checkpoint found \(looked for ckpt_best\.pth and ckpt\.pth/);
  });
});

describe('u2pl-infer and u2pl-data flags', () => {
  test.each([
    [inferMain, 'u2pl-infer', ['x.png', '--scales', '-1'], /--scales: expected comma-separated positive numbers/],
    [inferMain, 'u2pl-infer', ['no-such-image.png'], /no-such-image\.png: no such file or folder/],
    [inferMain, 'u2pl-infer', [], /Not enough non-option arguments/],
    [dataMain, 'u2pl-data', [], /give a command: check, split or prepare-cityscapes/],
    [dataMain, 'u2pl-data', ['split', '--list', 'l.txt', '--out', 'o'], /split: give --count N or --fraction F/],
    [dataMain, 'u2pl-data', ['split', '--list', 'l.txt', '--out', 'o', '--count', '0'], /--count: expected an integer >= 1, got '0'/],
    [dataMain, 'u2pl-data', ['split', '--list', 'l.txt', '--out', 'o', '--fraction', '1.5'], /--fraction: expected a number > 0 and <= 1, got '1\.5'/],
    [dataMain, 'u2pl-data', ['split', '--list', 'l.txt', '--out', 'o', '--count', '3', '--fraction', '0.5'], /Arguments count and fraction are mutually exclusive/],
    [dataMain, 'u2pl-data', ['split', '--list', 'missing.txt', '--out', 'o', '--count', '3'], /missing\.txt: list file not found/],
    [dataMain, 'u2pl-data', ['prepare-cityscapes', '/nonexistent'], /\/nonexistent: no gtFine folder/],
    [dataMain, 'u2pl-data', ['check', '/nonexistent/exp'], /\/nonexistent\/exp(\/config\.yaml)?: .*(no such file|cannot read the config)/],
  ])('%s %j', async (main, name, args, pattern) => {
    expectOneLineInputError(await runTool(name, main, args), pattern);
  });
});
