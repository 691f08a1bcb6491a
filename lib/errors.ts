/**
 * Errors about what the user gave: a config key, a file, a flag. Their message says what was wrong
 * and what was expected; the CLIs print it alone (no stack) and exit with code 2.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** A bad command-line flag or argument. */
export class UsageError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A file (data, list, config, checkpoint, output folder) that cannot be used as it is. */
export class FileError extends InputError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'FileError';
  }
}
