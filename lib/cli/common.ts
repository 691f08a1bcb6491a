/** Shared pieces of the u2pl-* command-line tools. */

/** For commands whose issue has not landed yet: says so and exits with status 2. */
export function notImplemented(command: string): never {
  process.stderr.write(`${command}: not implemented yet\n`);
  process.exit(2);
}
