/** Runs a u2pl-* tool's main in this process with its output captured (exit code as the bin gives it). */
import { CliMain, invokeCli } from '../../lib/cli/common';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function runTool(name: string, main: CliMain, args: string[]): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await invokeCli(name, main, args, { out: (t) => { out += t; }, err: (t) => { err += t; }, tty: false });
  return { code, out, err };
}

/** The CLI contract for bad input: exit 2 and exactly one line on stderr, without a stack or yargs' help. */
export function expectOneLineInputError(r: CliRun, pattern: RegExp): void {
  const lines = r.err.trimEnd().split('\n');
  expect({ code: r.code, lines: lines.length, help: /Options:/.test(r.err + r.out), stack: /^\s+at /m.test(r.err) }).toEqual({ code: 2, lines: 1, help: false, stack: false });
  expect(lines[0]).toMatch(pattern);
}
