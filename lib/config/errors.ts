/** Configuration errors and the small readers that produce them, each naming the key path. */
import { InputError } from '../errors';

export class ConfigError extends InputError {
  constructor(
    /** Dotted path of the offending key, e.g. "net.encoder.type". */
    readonly key: string,
    message: string,
    /** The config file the key came from, when known. */
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type Section = Record<string, unknown>;

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array (${JSON.stringify(value)})`;
  if (typeof value === 'string') return `the string '${value}'`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** A section that must be a mapping. */
export function section(value: unknown, key: string): Section {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(key, `expected a mapping, got ${describe(value)}`);
  }
  return value as Section;
}

/** Rejects keys other than `allowed` (the error lists what is allowed). */
export function onlyKeys(s: Section, allowed: readonly string[], key: string): void {
  for (const k of Object.keys(s)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(key ? `${key}.${k}` : k, `unknown key (allowed here: ${allowed.join(', ')})`);
    }
  }
}

export function bool(s: Section, name: string, fallback: boolean, key: string): boolean {
  const v = s[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`${key}.${name}`, `expected true or false, got ${describe(v)}`);
  return v;
}

export function int(s: Section, name: string, fallback: number | undefined, key: string, min = -Infinity): number {
  const v = s[name];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(`${key}.${name}`, 'required');
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(`${key}.${name}`, `expected an integer, got ${describe(v)}`);
  if (v < min) throw new ConfigError(`${key}.${name}`, `expected an integer >= ${min}, got ${v}`);
  return v;
}

export function num(s: Section, name: string, fallback: number | undefined, key: string, min = -Infinity, max = Infinity): number {
  const v = s[name];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(`${key}.${name}`, 'required');
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${key}.${name}`, `expected a number, got ${describe(v)}`);
  if (v < min || v > max) throw new ConfigError(`${key}.${name}`, `expected a number in [${min}, ${max}], got ${v}`);
  return v;
}

export function str(s: Section, name: string, fallback: string | undefined, key: string): string {
  const v = s[name];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(`${key}.${name}`, 'required');
    return fallback;
  }
  if (typeof v !== 'string') throw new ConfigError(`${key}.${name}`, `expected a string, got ${describe(v)}`);
  return v;
}

export function tuple<T>(s: Section, name: string, fallback: T[], key: string, length: number, check: (x: unknown) => x is T, what: string): T[] {
  const v = s[name];
  if (v === undefined || v === null) return fallback;
  if (!Array.isArray(v) || v.length !== length || !v.every(check)) {
    throw new ConfigError(`${key}.${name}`, `expected ${length} ${what}, got ${describe(v)}`);
  }
  return v as T[];
}

export const isBool = (x: unknown): x is boolean => typeof x === 'boolean';
export const isPositiveInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/** Collects the warnings of a config: unknown keys, and keys the reference accepts that do nothing here. */
export class Warner {
  readonly warnings: string[] = [];
  keys(s: Section, allowed: readonly string[], key: string): void {
    for (const k of Object.keys(s)) if (!allowed.includes(k)) this.warnings.push(`${key ? `${key}.` : ''}${k}: unknown key, ignored`);
  }

  /** A key the reference accepts that has no effect here: said by name, with why. */
  ignored(s: Section, name: string, key: string, why: string): void {
    if (s[name] !== undefined) this.warnings.push(`${key}.${name}: ignored (${why})`);
  }
}
