// Options of every NEO/TS program, declared once as data, and their loading from the command line
// and neo.conf. Names, letters and defaults are NEO's (spec/storage.md §11), so existing command
// lines and configuration files keep working. Precedence: command line, then the file's section,
// then its [DEFAULT] section, then the declared default.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { parseAddress, parseAddressList } from './address.js';
import type { Address } from './env.js';
import { ConfigError } from './errors.js';
import { DEFAULT_SECTION, NeoConf, optionKey } from './neoconf.js';

/**
 * - `path`: a string in which a leading `~` means the home directory;
 * - `address`: one address; `addresses`: a list separated by spaces, newlines or commas;
 * - `rest`: every argument from the first one that is not an option (only neoctl has one).
 */
export type OptionType =
  | 'string'
  | 'path'
  | 'int'
  | 'float'
  | 'bool'
  | 'address'
  | 'addresses'
  | 'rest';

export interface OptionSpec {
  /** The long name as NEO spells it on the command line, e.g. `dynamic-master-list`. */
  readonly name: string;
  /** The one-letter form, e.g. `D`. */
  readonly short?: string;
  readonly type: OptionType;
  readonly help: string;
  /** The default as an operator would write it: it goes through the same parsing as any value. */
  readonly default?: string;
  readonly required?: boolean;
  /** Given several times on the command line; one value per line in a file. */
  readonly repeatable?: boolean;
  readonly choices?: readonly string[];
  /** The least accepted value of a number. */
  readonly min?: number;
  /** The port of an address written as a host alone; without it such an address is an error. */
  readonly defaultPort?: number;
  /** The placeholder for the value in --help; the upper-cased name when absent. */
  readonly metavar?: string;
}

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

type ScalarValue<O extends OptionSpec> = O['type'] extends 'int' | 'float'
  ? number
  : O['type'] extends 'bool'
    ? boolean
    : O['type'] extends 'address'
      ? Address
      : O['type'] extends 'addresses'
        ? readonly Address[]
        : O['type'] extends 'rest'
          ? readonly string[]
          : O extends { readonly choices: readonly (infer Choice)[] }
            ? Choice
            : string;

type OptionValue<O extends OptionSpec> = O extends { readonly repeatable: true }
  ? readonly ScalarValue<O>[]
  : ScalarValue<O>;

/** Whether loadConfig always gives the option a value (otherwise it may be undefined). */
type AlwaysSet<O extends OptionSpec> = O extends { readonly required: true }
  ? true
  : O extends { readonly default: string }
    ? true
    : O extends { readonly repeatable: true }
      ? true
      : O['type'] extends 'bool' | 'rest'
        ? true
        : false;

/** The loaded configuration of an option table: one camelCase key per option. */
export type ConfigOf<T extends readonly OptionSpec[]> = {
  readonly [O in T[number] as CamelCase<O['name']>]: AlwaysSet<O> extends true
    ? OptionValue<O>
    : OptionValue<O> | undefined;
};

export interface ConfigEnv {
  /** The directory `~` stands for; the user's home directory when absent. */
  readonly home?: string;
  /** Reads a configuration file as text; node:fs when absent. */
  readonly readFile?: (path: string) => string;
}

/** Either `--help` was asked (print formatHelp and exit), or the configuration. */
export type LoadResult<T extends readonly OptionSpec[]> =
  | { readonly help: true }
  | { readonly help: false; readonly config: ConfigOf<T> };

/**
 * Checks an option table once, when its module loads: a mistake in it is a bug of ours, not
 * the operator's, so it must never surface as a configuration error.
 */
export function defineOptions<const T extends readonly OptionSpec[]>(options: T): T {
  const names = new Set<string>();
  const shorts = new Set<string>(['h']);
  for (const spec of options) {
    assert.match(spec.name, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, `bad option name ${spec.name}`);
    assert(!names.has(spec.name), `option --${spec.name} declared twice`);
    names.add(spec.name);
    if (spec.short !== undefined) {
      assert.equal(spec.short.length, 1, `--${spec.name}: a short option is one character`);
      assert(!shorts.has(spec.short), `-${spec.short} declared twice`);
      shorts.add(spec.short);
    }
    assert(!(spec.required === true && spec.default !== undefined), `--${spec.name}: required`);
    if (spec.type === 'bool' || spec.type === 'rest') {
      const plain = spec.default === undefined && spec.required !== true;
      assert(plain && spec.repeatable !== true, `--${spec.name}: a ${spec.type} is a plain one`);
    }
    assert(spec.type !== 'rest' || spec.short === undefined, `${spec.name}: no short form`);
    assert(spec.choices === undefined || spec.type === 'string', `--${spec.name}: choices`);
    const defaultText = spec.default;
    if (defaultText !== undefined) {
      assert.doesNotThrow(() => convertValue(spec, defaultText, 'default', '/'), `--${spec.name}`);
    }
  }
  assert(options.filter((spec) => spec.type === 'rest').length <= 1, 'several rest arguments');
  const section = specNamed(options, 'section');
  assert(!names.has('file') || section?.default !== undefined, '--file needs --section');
  return options;
}

function specNamed(options: readonly OptionSpec[], name: string): OptionSpec | undefined {
  return options.find((spec) => spec.name === name);
}

// ---------------------------------------------------------------------------------------------
// Loading

type CommandLineValue = string | boolean | (string | boolean)[] | undefined;

/** A value to convert, and where it comes from, for error messages. */
interface Source {
  readonly texts: readonly string[];
  readonly origin: string;
}

/**
 * Loads the options of `options` from `argv` (without the program name and node itself) and the
 * configuration file it names, if any. Throws ConfigError for anything the operator must fix.
 */
export function loadConfig<const T extends readonly OptionSpec[]>(
  options: T,
  argv: readonly string[],
  env: ConfigEnv = {},
): LoadResult<T> {
  const { values, rest } = parseCommandLine(options, argv);
  if (values['help'] === true) return { help: true };
  const home = env.home ?? homedir();
  const readFile = env.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const file = readConfigFile(options, values, home, readFile);
  const config: Record<string, unknown> = {};
  for (const spec of options) {
    config[camelCase(spec.name)] = spec.type === 'rest'
      ? rest
      : resolveOption(spec, values[spec.name], file, home);
  }
  checkTls(options, config);
  // Every key and value type above follows the specs T describes, as ConfigOf<T> states.
  return { help: false, config: config as ConfigOf<T> };
}

function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

function optionLabel(spec: OptionSpec): string {
  return spec.short === undefined ? `--${spec.name}` : `-${spec.short}/--${spec.name}`;
}

// --- the command line

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

function parseCommandLine(
  options: readonly OptionSpec[],
  argv: readonly string[],
): { values: Record<string, CommandLineValue>; rest: string[] } {
  const parseOptions: ParseOptions = { help: { type: 'boolean', short: 'h' } };
  for (const spec of options) {
    if (spec.type === 'rest') continue;
    parseOptions[spec.name] = {
      type: spec.type === 'bool' ? 'boolean' : 'string',
      multiple: spec.repeatable === true,
      ...(spec.short === undefined ? {} : { short: spec.short }),
    };
  }
  const { optionArgs, rest } = splitArguments(argv, parseOptions);
  let values: Record<string, CommandLineValue>;
  try {
    values = parseArgs({ args: optionArgs, options: parseOptions, strict: true }).values;
  } catch (error) {
    throw commandLineError(error, optionArgs, parseOptions);
  }
  if (rest.length > 0 && !options.some((spec) => spec.type === 'rest')) {
    throw new ConfigError(`unexpected argument '${rest[0]}' (see --help)`);
  }
  return { values, rest };
}

/**
 * Separates the options from the arguments that follow them: the first argument that is neither
 * an option nor an option's value, or everything after `--`. Meanwhile, a value that starts with
 * `-` (as in `--wait -1`) is joined to its option, since parseArgs would take it for an option.
 */
function splitArguments(
  argv: readonly string[],
  parseOptions: ParseOptions,
): { optionArgs: string[]; rest: string[] } {
  const valuedShorts = new Map<string, boolean>();
  for (const option of Object.values(parseOptions)) {
    if (option.short !== undefined) valuedShorts.set(option.short, option.type === 'string');
  }
  const takesNextArgument = (arg: string): boolean => {
    if (arg.startsWith('--')) {
      return !arg.includes('=') && parseOptions[arg.slice(2)]?.type === 'string';
    }
    // In a group of short options, the first one taking a value takes the rest of the group,
    // or the next argument when it ends the group.
    for (let index = 1; index < arg.length; index++) {
      const valued = valuedShorts.get(arg.charAt(index));
      if (valued !== false) return valued === true && index === arg.length - 1;
    }
    return false;
  };
  const optionArgs: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--') return { optionArgs, rest: argv.slice(index + 1) };
    if (!arg.startsWith('-') || arg === '-') return { optionArgs, rest: argv.slice(index) };
    const next = argv[index + 1];
    if (next === undefined || !takesNextArgument(arg)) {
      optionArgs.push(arg);
    } else if (/^-\.?[0-9]/.test(next)) {
      optionArgs.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`);
      index++;
    } else {
      optionArgs.push(arg, next);
      index++;
    }
  }
  return { optionArgs, rest: [] };
}

/** Turns parseArgs' errors into ConfigErrors; other errors are returned unchanged. */
function commandLineError(
  error: unknown,
  args: readonly string[],
  parseOptions: ParseOptions,
): unknown {
  if (!(error instanceof Error) || !('code' in error)) return error;
  if (typeof error.code !== 'string' || !error.code.startsWith('ERR_PARSE_ARGS_')) return error;
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    // Parse again leniently, only to name the culprit as the operator typed it.
    const { tokens } = parseArgs({ args, options: parseOptions, strict: false, tokens: true });
    for (const token of tokens) {
      if (token.kind === 'option' && !Object.hasOwn(parseOptions, token.name)) {
        const message = `unknown option '${token.rawName}' (see --help for the options)`;
        return new ConfigError(message, token.name, { cause: error });
      }
    }
  }
  return new ConfigError(`${error.message} (see --help)`, undefined, { cause: error });
}

// --- the configuration file

interface LoadedFile {
  readonly conf: NeoConf;
  readonly section: string;
}

function readConfigFile(
  options: readonly OptionSpec[],
  values: Readonly<Record<string, CommandLineValue>>,
  home: string,
  readFile: (path: string) => string,
): LoadedFile | undefined {
  const fileOption = values['file'];
  const sectionSpec = specNamed(options, 'section');
  if (typeof fileOption !== 'string' || sectionSpec?.default === undefined) return undefined;
  const path = expandHome(fileOption, home);
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`cannot read configuration file ${path}: ${reason}`, 'file', {
      cause: error,
    });
  }
  const conf = NeoConf.parse(text, path);
  const sectionOption = values['section'];
  const section = typeof sectionOption === 'string' ? sectionOption : sectionSpec.default;
  if (section !== DEFAULT_SECTION && !conf.hasSection(section)) {
    const known = conf.sectionNames().map((name) => `[${name}]`).join(' ') || 'none';
    throw new ConfigError(
      `configuration file ${path} has no section [${section}]`
        + ` (sections: ${known}; choose one with -s/--section)`,
      'section',
    );
  }
  return { conf, section };
}

/** Options of the file itself, which a file cannot set. */
const COMMAND_LINE_ONLY = new Set(['file', 'section']);

function fileSource(spec: OptionSpec, file: LoadedFile | undefined): Source | undefined {
  if (file === undefined || COMMAND_LINE_ONLY.has(spec.name)) return undefined;
  const found = file.conf.get(file.section, spec.name);
  if (found === undefined) return undefined;
  const key = optionKey(spec.name);
  const origin = `${file.conf.fileName}:${found.line} ('${key}' in [${found.section}])`;
  if (spec.repeatable !== true) return { texts: [found.value], origin };
  const texts = found.value.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  return { texts, origin };
}

// --- values

function resolveOption(
  spec: OptionSpec,
  commandLine: CommandLineValue,
  file: LoadedFile | undefined,
  home: string,
): unknown {
  const origin = `option ${optionLabel(spec)}`;
  if (spec.type === 'bool') {
    if (commandLine === true) return true;
    const fromFile = fileSource(spec, file);
    if (fromFile === undefined) return false;
    return parseBoolean(fromFile.texts[0] ?? '', fromFile.origin, spec);
  }
  let source: Source | undefined;
  if (typeof commandLine === 'string') source = { texts: [commandLine], origin };
  else if (Array.isArray(commandLine)) source = { texts: commandLine.map(String), origin };
  else source = fileSource(spec, file);
  if (source === undefined && spec.default !== undefined) {
    source = { texts: [spec.default], origin: `default of ${origin}` };
  }
  if (source === undefined) {
    if (spec.required === true) throw missingRequired(spec, file);
    return spec.repeatable === true ? [] : undefined;
  }
  const { texts, origin: from } = source;
  const converted = texts.map((text) => convertValue(spec, text, from, home));
  return spec.repeatable === true ? converted : converted[0];
}

function missingRequired(spec: OptionSpec, file: LoadedFile | undefined): ConfigError {
  const where = file === undefined
    ? 'or in a configuration file given with -f/--file'
    : `or as '${optionKey(spec.name)}' in section [${file.section}] of ${file.conf.fileName}`;
  const message = `missing required option ${optionLabel(spec)}: set it on the command line,`;
  return new ConfigError(`${message} ${where}`, spec.name);
}

/** Python's ConfigParser.getboolean words, which NEO files use for flags. */
const BOOLEAN_WORDS: ReadonlyMap<string, boolean> = new Map([
  ['1', true], ['yes', true], ['true', true], ['on', true],
  ['0', false], ['no', false], ['false', false], ['off', false],
]);

function parseBoolean(text: string, origin: string, spec: OptionSpec): boolean {
  const value = BOOLEAN_WORDS.get(text.toLowerCase());
  if (value === undefined) {
    const reason = `'${text}' is not a boolean (use true/false, yes/no, on/off or 1/0)`;
    throw new ConfigError(`${origin}: ${reason}`, spec.name);
  }
  return value;
}

const INTEGER = /^[+-]?[0-9]+$/;
const FLOAT = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

function convertValue(spec: OptionSpec, text: string, origin: string, home: string): unknown {
  const fail = (reason: string): ConfigError => new ConfigError(`${origin}: ${reason}`, spec.name);
  if (text === '' && spec.type !== 'addresses') throw fail('empty value');
  switch (spec.type) {
    case 'int':
    case 'float': {
      const trimmed = text.trim();
      const value = Number(trimmed);
      const valid = spec.type === 'int'
        ? INTEGER.test(trimmed) && Number.isSafeInteger(value)
        : FLOAT.test(trimmed) && Number.isFinite(value);
      if (!valid) throw fail(`'${text}' is not ${spec.type === 'int' ? 'an integer' : 'a number'}`);
      if (spec.min !== undefined && value < spec.min) {
        throw fail(`${value} is less than ${spec.min}`);
      }
      return value;
    }
    case 'address':
    case 'addresses':
      try {
        return spec.type === 'address'
          ? parseAddress(text, spec.defaultPort)
          : parseAddressList(text, spec.defaultPort);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        throw new ConfigError(`${origin}: ${error.message}`, spec.name, { cause: error });
      }
    case 'path':
      return expandHome(text, home);
    case 'string':
      if (spec.choices !== undefined && !spec.choices.includes(text)) {
        throw fail(`'${text}' is not one of ${spec.choices.join(', ')}`);
      }
      return text;
    case 'bool':
    case 'rest':
      assert.fail(`--${spec.name}: ${spec.type} has no text value`);
  }
}

/** `~` and `~/...` as a shell would expand them (`~user` is left alone). */
function expandHome(path: string, home: string): string {
  return path === '~' || path.startsWith('~/') ? home + path.slice(1) : path;
}

const TLS_OPTIONS = ['ca', 'cert', 'key'];

/** TLS is either off or fully configured: a partial setup is most likely a mistake. */
function checkTls(options: readonly OptionSpec[], config: Readonly<Record<string, unknown>>): void {
  const tlsSpecs = options.filter((spec) => TLS_OPTIONS.includes(spec.name));
  const missing = tlsSpecs.filter((spec) => config[camelCase(spec.name)] === undefined);
  if (missing.length < tlsSpecs.length && missing[0] !== undefined) {
    const names = missing.map(optionLabel).join(' and ');
    const message = `TLS needs --ca, --cert and --key together: ${names} missing`;
    throw new ConfigError(message, missing[0].name);
  }
}

// ---------------------------------------------------------------------------------------------
// Help

const HELP_COLUMN = 24;
const HELP_WIDTH = 79;

/** The text printed by `--help`: every option, its default, and how files are used. */
export function formatHelp(
  programName: string,
  options: readonly OptionSpec[],
  description?: string,
): string {
  const restSpec = options.find((spec) => spec.type === 'rest');
  const restUsage = restSpec === undefined ? '' : ` [${restSpec.name} ...]`;
  const lines = [`usage: ${programName} [options]${restUsage}`, ''];
  if (description !== undefined) lines.push(description, '');
  if (restSpec !== undefined) {
    lines.push('positional arguments:', ...helpEntry(`${restSpec.name} ...`, restSpec.help), '');
  }
  lines.push('options:', ...helpEntry('-h, --help', 'show this help and exit'));
  for (const spec of options) {
    if (spec.type !== 'rest') lines.push(...helpEntry(optionUsage(spec), optionHelp(spec)));
  }
  const section = specNamed(options, 'section')?.default;
  if (section !== undefined) lines.push('', ...wrap(fileHelp(options, section), HELP_WIDTH));
  return lines.join('\n') + '\n';
}

function fileHelp(options: readonly OptionSpec[], section: string): string {
  const repeatable = options.some((spec) => spec.repeatable === true);
  return `Options other than --file and --section may also be set in section [${section}]`
    + ' (or the one given by --section) of the configuration file, with "_" in place of "-"'
    + ' in their names (e.g. dynamic_master_list = PATH), and in its [DEFAULT] section, which'
    + ' applies to every section. The command line wins over the file.'
    + (repeatable ? ' Repeatable options take one value per line.' : '');
}

function optionUsage(spec: OptionSpec): string {
  const names = spec.short === undefined ? `--${spec.name}` : `-${spec.short}, --${spec.name}`;
  if (spec.type === 'bool') return names;
  return `${names} ${spec.metavar ?? spec.name.toUpperCase().replaceAll('-', '_')}`;
}

function optionHelp(spec: OptionSpec): string {
  const notes: string[] = [];
  if (spec.choices !== undefined) notes.push(`one of: ${spec.choices.join(', ')}`);
  if (spec.required === true) notes.push('required');
  if (spec.default !== undefined) notes.push(`default: ${spec.default || 'none'}`);
  if (spec.repeatable === true) notes.push('may be repeated');
  return notes.length === 0 ? spec.help : `${spec.help} (${notes.join('; ')})`;
}

/** One option in argparse's layout: help beside the option when it fits, else below it. */
function helpEntry(usage: string, help: string): string[] {
  const indent = ' '.repeat(HELP_COLUMN);
  const helpLines = wrap(help, HELP_WIDTH - HELP_COLUMN).map((line) => indent + line);
  const first = `  ${usage}`;
  if (first.length + 2 > HELP_COLUMN) return [first, ...helpLines];
  return [first.padEnd(HELP_COLUMN) + (helpLines[0] ?? '').trimStart(), ...helpLines.slice(1)];
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Option tables (last in the file: building them runs the code above)

/** TLS and logging, which every program has. */
export const COMMON_OPTIONS = [
  {
    name: 'logfile', short: 'l', type: 'path', metavar: 'PATH',
    help: 'write the log to this file (appended; default: standard error)',
  },
  { name: 'ca', type: 'path', help: '(TLS) certificate authority, in PEM format' },
  { name: 'cert', type: 'path', help: '(TLS) certificate of this node, in PEM format' },
  { name: 'key', type: 'path', help: '(TLS) private key of this node, in PEM format' },
] as const satisfies readonly OptionSpec[];

/** Options of the three daemons; they differ only in defaults. */
function serverOptions(section: string, bind: string, masters: string) {
  return [
    {
      name: 'file', short: 'f', type: 'path', metavar: 'PATH',
      help: 'read options from this configuration file',
    },
    {
      name: 'section', short: 's', type: 'string', default: section,
      help: 'the section of the configuration file to read',
    },
    { name: 'cluster', short: 'c', type: 'string', required: true, help: 'the cluster name' },
    {
      name: 'masters', short: 'm', type: 'addresses', default: masters,
      help: 'space-separated list of master node addresses',
    },
    {
      name: 'bind', short: 'b', type: 'address', default: bind, defaultPort: 0, metavar: 'ADDRESS',
      help: 'the local address to listen on (port 0 or none: any free port)',
    },
    {
      name: 'dynamic-master-list', short: 'D', type: 'path', metavar: 'PATH',
      help: 'JSON file of the known master addresses, kept up to date by this node',
    },
    {
      name: 'peer-timeout', type: 'float', default: '10', min: 0, metavar: 'SECONDS',
      help: 'close a connection whose peer sent nothing for this long, after a Ping'
        + ' (NEO/TS extension; 0: rely on TCP keep-alive only, as NEO)',
    },
  ] as const satisfies readonly OptionSpec[];
}

const TEST_NID_OPTION = {
  name: 'nid', short: 'i', type: 'int', help: 'use this NID for this process (for tests)',
} as const satisfies OptionSpec;

export const MASTER_OPTIONS = defineOptions([
  ...COMMON_OPTIONS,
  ...serverOptions('master', '127.0.0.1:10000', ''),
  {
    name: 'autostart', short: 'A', type: 'int', min: 1, metavar: 'N',
    help: 'start a new cluster automatically once N storage nodes are pending; set it to the'
      + ' total number of storage nodes, so that a cluster is never re-created by accident',
  },
  {
    name: 'upstream-cluster', short: 'C', type: 'string', metavar: 'NAME',
    help: 'the name of the cluster to back up',
  },
  {
    name: 'upstream-masters', short: 'M', type: 'addresses', metavar: 'MASTERS',
    help: 'space-separated list of the master addresses of the cluster to back up',
  },
  {
    name: 'backup', short: 'B', type: 'bool',
    help: 'if the database is empty, go to BACKINGUP instead of RUNNING once verified'
      + ' (needs --upstream-cluster and --upstream-masters)',
  },
  TEST_NID_OPTION,
  {
    name: 'replicas', short: 'r', type: 'int', default: '0', min: 0, metavar: 'N',
    help: 'number of replicas of a new cluster',
  },
  {
    name: 'partitions', short: 'p', type: 'int', default: '100', min: 1, metavar: 'N',
    help: 'number of partitions of a new cluster',
  },
]);

export const STORAGE_OPTIONS = defineOptions([
  ...COMMON_OPTIONS,
  ...serverOptions('storage', '127.0.0.1', '127.0.0.1:10000'),
  {
    name: 'adapter', short: 'a', type: 'string', default: 'SQLite',
    choices: ['SQLite', 'Memory'],
    help: 'database adapter: SQLite (embedded) or Memory (volatile, for tests); MySQL is not available yet',
  },
  {
    name: 'database', short: 'd', type: 'string', required: true,
    help: 'the database: a path for SQLite, a connection string for MySQL,'
      + ' a configuration file for Importer',
  },
  {
    name: 'wait', short: 'w', type: 'float', default: '0', min: -1, metavar: 'SECONDS',
    help: 'how long to wait for the database to be available before failing (-1: forever)',
  },
  { name: 'disable-pack', type: 'bool', help: 'never process pack orders' },
  {
    name: 'disable-drop-partitions', type: 'bool',
    help: 'keep the data of discarded cells, since deleting it is slow on big databases',
  },
  {
    name: 'new-nid', type: 'bool',
    help: 'ask an operational cluster for a new NID, store it in the database and exit'
      + ' (to set up a node from a copy of another node\'s database)',
  },
  {
    ...TEST_NID_OPTION,
    help: 'use this NID for a new database (for tests); a NID already stored in the database wins',
  },
  {
    name: 'engine', short: 'e', type: 'string', choices: ['InnoDB', 'RocksDB'],
    help: 'MySQL table engine; InnoDB when not given',
  },
  {
    name: 'dedup', type: 'bool',
    help: 'deduplicate identical data (only when the database is created)',
  },
  { name: 'reset', type: 'bool', help: 'erase the database if any, and exit' },
]);

export const ADMIN_OPTIONS = defineOptions([
  ...COMMON_OPTIONS,
  ...serverOptions('admin', '127.0.0.1:9999', '127.0.0.1:10000'),
  {
    name: 'monitor-maxlag', type: 'float', default: '0', min: 0, metavar: 'SECONDS',
    help: 'warn when a monitored backup cluster lags behind its upstream by more than this',
  },
  {
    name: 'monitor-email', type: 'string', repeatable: true, metavar: 'ADDRESS',
    help: 'send notifications to this email address',
  },
  {
    name: 'monitor-backup', type: 'string', repeatable: true, metavar: 'CLUSTER',
    help: 'name of a backup cluster to monitor',
  },
  {
    name: 'smtp', type: 'string', default: 'localhost', metavar: 'HOST[:PORT]',
    help: 'SMTP server for email notifications',
  },
  { name: 'smtp-tls', type: 'bool', help: 'use STARTTLS with the SMTP server' },
  { name: 'smtp-auth', type: 'string', metavar: 'USER:PASS', help: 'SMTP credentials' },
  TEST_NID_OPTION,
]);

export const NEOCTL_OPTIONS = defineOptions([
  ...COMMON_OPTIONS,
  {
    name: 'address', short: 'a', type: 'address', default: '127.0.0.1:9999', defaultPort: 9999,
    help: 'address of an admin node',
  },
  {
    name: 'cmd', type: 'rest',
    help: 'the command to execute, with its arguments; without one, the list of commands is shown',
  },
]);

export type MasterConfig = ConfigOf<typeof MASTER_OPTIONS>;
export type StorageConfig = ConfigOf<typeof STORAGE_OPTIONS>;
export type AdminConfig = ConfigOf<typeof ADMIN_OPTIONS>;
export type NeoctlConfig = ConfigOf<typeof NEOCTL_OPTIONS>;
