/** Labeled / unlabeled splits in the published format (labeled.txt + unlabeled.txt). */
import fs from 'fs';
import path from 'path';
import { InputError } from '../errors';
import { readList } from './datasets';
import { Random } from './random';

export interface Split {
  labeled: string[];
  unlabeled: string[];
}

/** The unlabeled list of a split: the labeled list's sibling unlabeled.txt (§2.2). */
export function unlabeledListFor(labeledList: string): string {
  return path.join(path.dirname(labeledList), 'unlabeled.txt');
}

/**
 * A seeded split of `entries`: `count` labeled entries (or a fraction in (0, 1)), the rest unlabeled.
 * Entries keep their original order inside each list.
 */
export function makeSplit(entries: string[], amount: number, seed: number): Split {
  const n = entries.length;
  const count = amount > 0 && amount < 1 ? Math.max(1, Math.round(amount * n)) : amount;
  if (!Number.isInteger(count) || count < 1 || count >= n) {
    throw new InputError(`labeled amount must be a count in [1, ${n - 1}] or a fraction in (0, 1), got ${amount}`);
  }
  const chosen = new Set(new Random(seed).shuffle([...Array(n).keys()]).slice(0, count));
  return { labeled: entries.filter((_, i) => chosen.has(i)), unlabeled: entries.filter((_, i) => !chosen.has(i)) };
}

export function writeSplit(dir: string, split: Split): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'labeled.txt'), `${split.labeled.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'unlabeled.txt'), `${split.unlabeled.join('\n')}\n`);
}

export function readSplit(labeledList: string): Split {
  return { labeled: readList(labeledList), unlabeled: readList(unlabeledListFor(labeledList)) };
}
