// neoctl's command line: the tree of command words, the parsing of their arguments, and the list
// of commands printed without one (spec/neoctl.md §2-3). Pure functions: nothing here talks to
// the network, so every syntax rule is unit-tested on its own.

import { ClusterStates, NodeTypes } from '../protocol/enums.js';
import type { ClusterState, NodeType } from '../protocol/enums.js';
import { ZERO_TID, p64, parseNid, tidFromTime } from '../protocol/ids.js';

export type Command =
  | { readonly kind: 'usage' }
  | { readonly kind: 'printIds' }
  | { readonly kind: 'printPt'; readonly min: number; readonly max: number; readonly nid: number | null }
  | { readonly kind: 'printNode'; readonly type: NodeType | null }
  | { readonly kind: 'printCluster' }
  | { readonly kind: 'printPrimary' }
  | { readonly kind: 'printSummary' }
  | { readonly kind: 'setCluster'; readonly state: ClusterState }
  | { readonly kind: 'setReplicas'; readonly replicas: number }
  | {
      readonly kind: 'check';
      readonly partitions: ReadonlyMap<number, number | null>;
      /** `:REF` (or `:`): every partition, against REF (or any other replica). */
      readonly everyPartition: { readonly reference: number | null } | null;
      readonly minTid: Buffer;
      readonly maxTid: Buffer | null;
    }
  | { readonly kind: 'start' }
  | { readonly kind: 'add'; readonly nids: readonly number[] | 'all' }
  | { readonly kind: 'tweak'; readonly dryRun: boolean; readonly nids: readonly number[] }
  | { readonly kind: 'kill'; readonly nid: number }
  | { readonly kind: 'drop'; readonly nid: number }
  | { readonly kind: 'pruneOrphan'; readonly dryRun: boolean; readonly nids: readonly number[] | 'all' }
  | { readonly kind: 'truncate'; readonly tid: Buffer }
  | { readonly kind: 'flushLog' };

/** A command neoctl refuses before connecting; the message is printed as is, exit status 1. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

type Parser = (args: readonly string[]) => Command;

interface Leaf {
  readonly help: readonly string[];
  readonly parse: Parser;
}

interface Branch {
  readonly [word: string]: Leaf | Branch;
}

function isLeaf(node: Leaf | Branch): node is Leaf {
  return typeof (node as Leaf).parse === 'function';
}

// ---------------------------------------------------------------------------------------------
// Arguments

function noArguments(command: string, args: readonly string[]): void {
  if (args.length > 0) throw new CommandError(`${command}: unexpected arguments: ${args.join(' ')}`);
}

const INTEGER = /^\s*[+-]?[0-9]+(_[0-9]+)*\s*$/;

/** A decimal integer, as Python's int() reads it. */
export function parseInteger(text: string, what: string): number {
  const value = Number(text.replaceAll('_', ''));
  if (!INTEGER.test(text) || !Number.isSafeInteger(value)) {
    throw new CommandError(`invalid ${what}: '${text}' is not an integer`);
  }
  return value;
}

/** A node id in printed form: S1, M2, C3, A1 (letters are case-sensitive). */
export function parseNodeArgument(text: string): number {
  try {
    return parseNid(text);
  } catch (error) {
    throw new CommandError(error instanceof Error ? error.message : String(error));
  }
}

const PY_INT_LITERAL = /^\s*\+?(0[xX](_?[0-9a-fA-F])+|0[oO](_?[0-7])+|0[bB](_?[01])+|[1-9](_?[0-9])*|0(_?0)*)\s*$/;
const PY_FLOAT = /^\s*[+-]?(([0-9](_?[0-9])*)?\.?[0-9](_?[0-9])*|[0-9](_?[0-9])*\.)([eE][+-]?[0-9](_?[0-9])*)?\s*$/;
const TID_LIMIT = 1n << 64n;

/**
 * A TID argument: `tid:<integer>` (prefix in any case; decimal, 0x, 0o or 0b) for the TID itself,
 * or a float read as a UNIX time in UTC, converted to the TID of that instant.
 */
export function parseTidArgument(text: string): Buffer {
  if (text.toLowerCase().startsWith('tid:')) {
    const literal = text.slice(4);
    if (PY_INT_LITERAL.test(literal)) {
      const value = BigInt(literal.trim().replace(/^\+/, '').replaceAll('_', '').replace(/^0+(?=\d)/, ''));
      if (value < TID_LIMIT) return p64(value);
    }
    throw new CommandError(`invalid TID '${text}': expected tid:<integer> below 2**64`);
  }
  const seconds = Number(text.replaceAll('_', ''));
  if (!PY_FLOAT.test(text) || !Number.isFinite(seconds) || seconds < 0) {
    throw new CommandError(`invalid TID '${text}': expected tid:<integer> or a UNIX timestamp`);
  }
  return tidFromTime(seconds);
}

function parseNodeType(text: string): NodeType {
  const type = NodeTypes.info.byName(text.toUpperCase());
  if (type === undefined) {
    const names = NodeTypes.info.items.map((item) => item.name.toLowerCase()).join(', ');
    throw new CommandError(`unknown node type '${text}' (one of: ${names})`);
  }
  return type;
}

function parseClusterState(text: string): ClusterState {
  const state = ClusterStates.info.byName(text.toUpperCase());
  if (state === undefined) {
    const names = ClusterStates.info.items.map((item) => item.name).join(', ');
    throw new CommandError(`unknown cluster state '${text}' (one of: ${names})`);
  }
  return state;
}

/** `all` alone, or a list of node ids. */
function parseStorageList(args: readonly string[]): readonly number[] | 'all' {
  if (args.length === 1 && args[0] === 'all') return 'all';
  return args.map(parseNodeArgument);
}

function exactlyOneNode(command: string, args: readonly string[]): number {
  const [first] = args;
  if (first === undefined || args.length !== 1) {
    throw new CommandError(`${command}: expected exactly one node id, got ${args.length} arguments`);
  }
  return parseNodeArgument(first);
}

/**
 * `check` arguments, read left to right: each one made of two parts around one `:` is
 * PARTITION:REFERENCE; the first other one is MIN_TID, the next MAX_TID, and the rest is ignored
 * (as NEO's neoctl does, so `tid:` values cannot be used there, only timestamps).
 */
function parseCheck(args: readonly string[]): Command {
  const partitions = new Map<number, number | null>();
  let minTid: Buffer = ZERO_TID;
  let maxTid: Buffer | null = null;
  let everyPartition: { reference: number | null } | null = null;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const parts = arg.split(':');
    if (parts.length !== 2) {
      minTid = parseTidArgument(arg);
      const next = args[index + 1];
      if (next !== undefined) maxTid = parseTidArgument(next);
      break;
    }
    const [partition, reference] = parts as [string, string];
    const nid = reference === '' ? null : parseNodeArgument(reference);
    if (partition === '') {
      if (partitions.size > 0) throw new CommandError(`check: '${arg}' (every partition) cannot follow listed partitions`);
      everyPartition = { reference: nid };
      continue;
    }
    if (everyPartition !== null) throw new CommandError(`check: '${arg}' cannot follow ':' (every partition)`);
    partitions.set(parseInteger(partition, 'partition'), nid);
  }
  return { kind: 'check', partitions, everyPartition, minTid, maxTid };
}

// ---------------------------------------------------------------------------------------------
// The command tree, in the order of the list of commands

const COMMANDS: Branch = {
  print: {
    ids: {
      help: ['Print the last OID, the last TID and the last partition table id.'],
      parse: (args) => (noArguments('print ids', args), { kind: 'printIds' }),
    },
    pt: {
      help: [
        'Print the partition table: a grid of cells, or rows MIN to MAX (excluded).',
        'Parameters: [min [max [node]]]',
        '  min: first row (default 0)',
        '  max: row after the last one (0: up to the last row)',
        '  node: ignored by the admin',
      ],
      parse: (args) => {
        if (args.length > 3) throw new CommandError(`print pt: too many arguments: ${args.join(' ')}`);
        const [min = '0', max = '0', node] = args;
        return {
          kind: 'printPt',
          min: parseInteger(min, 'row offset'),
          max: parseInteger(max, 'row offset'),
          nid: node === undefined ? null : parseNodeArgument(node),
        };
      },
    },
    node: {
      help: ['Print the nodes known to the admin.', 'Parameters: [type]', '  type: only nodes of this type'],
      parse: (args) => {
        if (args.length > 1) throw new CommandError(`print node: too many arguments: ${args.join(' ')}`);
        const [type] = args;
        return { kind: 'printNode', type: type === undefined ? null : parseNodeType(type) };
      },
    },
    cluster: {
      help: ['Print the cluster state.'],
      parse: (args) => (noArguments('print cluster', args), { kind: 'printCluster' }),
    },
    primary: {
      help: ['Print the node id of the primary master.'],
      parse: () => ({ kind: 'printPrimary' }),
    },
    summary: {
      help: [
        'Print a summary of the health of this cluster and of its monitored backups.',
        'The first line is "# " and a JSON object {severity: [cluster name | null]}',
        'where severity is "warning" or "problem" and null stands for this cluster.',
      ],
      parse: (args) => (noArguments('print summary', args), { kind: 'printSummary' }),
    },
  },
  set: {
    cluster: {
      help: ['Change the cluster state.', 'Parameters: state'],
      parse: (args) => {
        const [state] = args;
        if (state === undefined || args.length !== 1) {
          throw new CommandError('set cluster: expected exactly one cluster state');
        }
        return { kind: 'setCluster', state: parseClusterState(state) };
      },
    },
    replicas: {
      help: ['Change the number of replicas.', 'Parameters: nr', '  nr: 0 or more (0: no redundancy)'],
      parse: (args) => {
        const [text] = args;
        if (text === undefined || args.length !== 1) {
          throw new CommandError('set replicas: expected exactly one number');
        }
        const replicas = parseInteger(text, 'number of replicas');
        if (replicas < 0) throw new CommandError('invalid number of replicas');
        return { kind: 'setReplicas', replicas };
      },
    },
  },
  check: {
    help: [
      'Compare the replicas of partitions (results in the log of the primary master).',
      'Parameters: partition:[reference] ... [min_tid [max_tid]]',
      '  reference: id of a storage node whose data is known to be good',
    ],
    parse: parseCheck,
  },
  start: {
    help: ['Let a cluster in RECOVERING state start (same as: set cluster VERIFYING).'],
    parse: (args) => (noArguments('start', args), { kind: 'start' }),
  },
  add: {
    help: ['Let pending storage nodes join the cluster.', 'Parameters: node [node [...]] | all'],
    parse: (args) => ({ kind: 'add', nids: parseStorageList(args) }),
  },
  tweak: {
    help: [
      'Balance the partition table. Listed and down nodes are left out and do not count as',
      'replicas, usually to drop them once their data is replicated elsewhere.',
      'Parameters: [-n] [node [...]]',
      '  -n: dry run',
    ],
    parse: (args) => {
      const dryRun = args[0] === '-n';
      return { kind: 'tweak', dryRun, nids: args.slice(dryRun ? 1 : 0).map(parseNodeArgument) };
    },
  },
  drop: {
    help: ['Remove a stopped storage node permanently (its database is erased).', 'Parameters: node'],
    parse: (args) => ({ kind: 'drop', nid: exactlyOneNode('drop', args) }),
  },
  kill: {
    help: ['Stop a storage node or a secondary master.', 'Parameters: node'],
    parse: (args) => ({ kind: 'kill', nid: exactlyOneNode('kill', args) }),
  },
  prune_orphan: {
    help: [
      'Delete data that no object record refers to (may take long).',
      'Parameters: dry_run node [node [...]] | dry_run all',
      '  dry_run: 0 or 1',
    ],
    parse: (args) => {
      const [dry, ...nodes] = args;
      if (dry === undefined) throw new CommandError('prune_orphan: missing dry_run (0 or 1)');
      if (dry !== '0' && dry !== '1') {
        throw new CommandError(`prune_orphan: dry_run must be 0 or 1, not '${dry}'`);
      }
      return { kind: 'pruneOrphan', dryRun: dry === '1', nids: parseStorageList(nodes) };
    },
  },
  truncate: {
    help: [
      'Delete every transaction after the given TID (RUNNING cluster, no pending transaction).',
      'The cluster goes back to RECOVERING and restarts.',
      'Parameters: tid',
    ],
    parse: (args) => {
      const [tid] = args;
      if (tid === undefined || args.length !== 1) throw new CommandError('truncate: expected exactly one TID');
      return { kind: 'truncate', tid: parseTidArgument(tid) };
    },
  },
  flush_log: {
    help: ['Make every node of the cluster flush its log (of backup clusters: only the masters).'],
    parse: (args) => (noArguments('flush_log', args), { kind: 'flushLog' }),
  },
};

/** Parses the words after neoctl's options; throws CommandError. */
export function parseCommand(words: readonly string[]): Command {
  if (words.length === 0) return { kind: 'usage' };
  let node: Leaf | Branch = COMMANDS;
  let level = 0;
  while (!isLeaf(node)) {
    const word = words[level];
    if (word === undefined) {
      const choices = Object.keys(node).join(', ');
      throw new CommandError(`incomplete command: ${words.join(' ')} (followed by one of: ${choices})`);
    }
    const next: Leaf | Branch | undefined = Object.hasOwn(node, word) ? node[word] : undefined;
    if (next === undefined) throw new CommandError(`invalid command: ${words.join(' ')}`);
    node = next;
    level++;
  }
  return node.parse(words.slice(level));
}

const TID_SYNTAX =
  "The syntax of « TID » arguments is either tid:<integer> (case insensitive) for a TID or <float>"
  + " for a UNIX timestamp, e.g. 'tid:257684787499560686', 'tid:0x3937af2eeeeeeee' or"
  + " '1325421296' for 2012-01-01 12:34:56 UTC.";

/** The list of commands, printed when neoctl is run without one. */
export function usageText(): string {
  const lines = ['Available commands:'];
  const walk = (branch: Branch, level: number): void => {
    const indent = '  '.repeat(level);
    const inner = '  '.repeat(level + 1);
    for (const [word, node] of Object.entries(branch)) {
      lines.push(indent + word);
      if (isLeaf(node)) lines.push(...node.help.map((line) => inner + line), inner);
      else walk(node, level + 1);
    }
  };
  walk(COMMANDS, 0);
  lines.push(TID_SYNTAX);
  return lines.join('\n');
}
