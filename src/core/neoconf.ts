// Reader for NEO configuration files (neo.conf), which NEO reads with Python's ConfigParser.
// We follow that parser's default behaviour so that an existing file means the same thing here:
//
// - `[name]` starts a section; `[DEFAULT]` holds values inherited by every section.
// - `key = value` or `key: value` (the first `=` or `:` separates); key and value are trimmed.
// - Lines whose first non-blank character is `#` or `;` are comments, wherever they are. A `#`
//   later in a line is part of the value.
// - A line indented more than its option's line continues the value (joined with a newline);
//   blank lines inside such a value are kept, trailing ones dropped.
// - `%(key)s` is replaced by another option of the section (or of DEFAULT), `%%` is a literal
//   `%`, and any other `%` is an error (ConfigParser's "basic interpolation").
// - A section or key given twice in one file is an error.
//
// One deliberate difference: keys are lowercased as ConfigParser does, and also have `-` turned
// into `_`, because NEO spells option names with `_` in files but `-` on the command line, and we
// accept both. `upstream-cluster` and `upstream_cluster` in one section are thus a duplicate.

import { ConfigError } from './errors.js';

/** ConfigParser's limit on nested `%(key)s` references, which also stops reference cycles. */
const MAX_INTERPOLATION_DEPTH = 10;

/** The section whose options every other section inherits. Its name is case-sensitive. */
export const DEFAULT_SECTION = 'DEFAULT';

/** A value as read from the file: text not yet interpolated, and the line of its key. */
interface RawValue {
  readonly lines: string[];
  readonly line: number;
}

/** A value as seen from a section: interpolated, and where it was written. */
export interface ConfValue {
  readonly value: string;
  readonly line: number;
  /** The section holding the value: the one asked for, or DEFAULT_SECTION when inherited. */
  readonly section: string;
}

/** The form of a key in a file that NEO/TS compares: lowercase, with `_` for `-`. */
export function optionKey(name: string): string {
  return name.toLowerCase().replaceAll('-', '_');
}

type Section = Map<string, RawValue>;

export class NeoConf {
  readonly fileName: string;
  private readonly defaults: Section;
  private readonly sections: ReadonlyMap<string, Section>;

  private constructor(fileName: string, defaults: Section, sections: ReadonlyMap<string, Section>) {
    this.fileName = fileName;
    this.defaults = defaults;
    this.sections = sections;
  }

  /** Parses file content; `fileName` is only used in error messages. */
  static parse(text: string, fileName: string): NeoConf {
    const { defaults, sections } = new Reader(fileName).read(text);
    return new NeoConf(fileName, defaults, sections);
  }

  /** Section names in file order, without DEFAULT. */
  sectionNames(): string[] {
    return [...this.sections.keys()];
  }

  hasSection(section: string): boolean {
    return this.sections.has(section);
  }

  /** The interpolated value of `key` in `section`; undefined when it and DEFAULT lack it. */
  get(section: string, key: string): ConfValue | undefined {
    const own = this.requireSection(section);
    const normalised = optionKey(key);
    const inherited = !own.has(normalised);
    const raw = own.get(normalised) ?? this.defaults.get(normalised);
    if (raw === undefined) return undefined;
    return {
      value: this.interpolate(own, normalised, raw, 1),
      line: raw.line,
      section: inherited ? DEFAULT_SECTION : section,
    };
  }

  private requireSection(section: string): Section {
    if (section === DEFAULT_SECTION) return this.defaults;
    const found = this.sections.get(section);
    if (found === undefined) {
      throw new ConfigError(`${this.fileName}: no section [${section}]`);
    }
    return found;
  }

  private interpolate(own: Section, key: string, raw: RawValue, depth: number): string {
    const fail = (reason: string): ConfigError =>
      new ConfigError(`${this.fileName}:${raw.line}: value of '${key}': ${reason}`);
    if (depth > MAX_INTERPOLATION_DEPTH) {
      throw fail(`more than ${MAX_INTERPOLATION_DEPTH} nested %(...)s references (a cycle?)`);
    }
    const text = joinLines(raw.lines);
    return text.replace(/%(?:%|\(([^)]*)\)s|)/g, (match, name: string | undefined) => {
      if (match === '%%') return '%';
      if (name === undefined) throw fail("'%' must be followed by '%' or '(name)s'");
      const referenced = optionKey(name);
      const target = own.get(referenced) ?? this.defaults.get(referenced);
      if (target === undefined) throw fail(`'%(${name})s' refers to no option`);
      return this.interpolate(own, referenced, target, depth + 1);
    });
  }
}

/** ConfigParser drops trailing blank lines (and trailing spaces) of a multi-line value. */
function joinLines(lines: readonly string[]): string {
  return lines.join('\n').trimEnd();
}

/** The state of one pass over a file, line by line, as ConfigParser reads it. */
class Reader {
  private readonly fileName: string;
  private readonly defaults: Section = new Map();
  private readonly sections = new Map<string, Section>();
  private current: { name: string; options: Section } | undefined;
  /** The option the next more-indented line continues, if any. */
  private continued: RawValue | undefined;
  private indent = 0;

  constructor(fileName: string) {
    this.fileName = fileName;
  }

  read(text: string): { defaults: Section; sections: Map<string, Section> } {
    const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
    lines.forEach((line, index) => this.readLine(line, index + 1));
    return { defaults: this.defaults, sections: this.sections };
  }

  private error(lineNumber: number, reason: string): ConfigError {
    return new ConfigError(`${this.fileName}:${lineNumber}: ${reason}`);
  }

  private readLine(line: string, lineNumber: number): void {
    const value = line.trim();
    if (value.startsWith('#') || value.startsWith(';')) return;
    if (value === '') {
      this.continued?.lines.push('');
      return;
    }
    const indent = line.search(/\S/);
    if (this.continued !== undefined && indent > this.indent) {
      this.continued.lines.push(value);
      return;
    }
    this.indent = indent;
    if (value.startsWith('[') && value.endsWith(']')) {
      this.startSection(value.slice(1, -1), lineNumber);
    } else {
      this.addOption(value, lineNumber);
    }
  }

  private startSection(name: string, lineNumber: number): void {
    if (name === '') throw this.error(lineNumber, 'empty section name');
    this.continued = undefined;
    if (name === DEFAULT_SECTION) {
      this.current = { name, options: this.defaults };
      return;
    }
    if (this.sections.has(name)) throw this.error(lineNumber, `section [${name}] appears twice`);
    const options: Section = new Map();
    this.sections.set(name, options);
    this.current = { name, options };
  }

  private addOption(value: string, lineNumber: number): void {
    const match = /^(.*?)\s*[=:]\s*(.*)$/.exec(value);
    if (match === null) {
      const expected = `expected '[section]', 'key = value' or 'key: value'`;
      throw this.error(lineNumber, `${expected}, got '${value}'`);
    }
    const [, name = '', text = ''] = match;
    if (name === '') throw this.error(lineNumber, `missing option name before '=' or ':'`);
    if (this.current === undefined) {
      const reason = `'${name}' is outside of any section (a file starts with '[section]')`;
      throw this.error(lineNumber, reason);
    }
    const key = optionKey(name);
    if (this.current.options.has(key)) {
      throw this.error(lineNumber, `'${key}' is set twice in section [${this.current.name}]`);
    }
    this.continued = { lines: [text], line: lineNumber };
    this.current.options.set(key, this.continued);
  }
}
