// neoctl: parsing of every command and its errors, the printed texts, and a replay of the
// reference neoctl runs of the captured scenario: our neoctl must send the same requests byte for
// byte and, from the admin's recorded answers, print what the reference neoctl printed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WireNodeInfo } from '../../src/core/node-table.js';
import type { WireRow } from '../../src/core/partition-table.js';
import { CtlFailure } from '../../src/ctl/client.js';
import type { AdminRequester, Answer } from '../../src/ctl/client.js';
import { CommandError, parseCommand, parseTidArgument, usageText } from '../../src/ctl/commands.js';
import type { Command } from '../../src/ctl/commands.js';
import {
  formatMonitorHeader,
  formatNodeListText,
  formatPartitionGrid,
  formatRowList,
  formatUtcTime,
} from '../../src/ctl/format.js';
import { runCommand } from '../../src/ctl/run.js';
import { PacketReader, encodePacket } from '../../src/protocol/codec.js';
import type { Packet } from '../../src/protocol/codec.js';
import { CellStates, ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { ZERO_TID, p64, tidFromTime, tidToHex } from '../../src/protocol/ids.js';
import type { ArgsOf, PacketName } from '../../src/protocol/packets.js';
import { readSpecJson, readTranscripts } from '../helpers/spec.js';
import type { TranscriptLine } from '../helpers/spec.js';

const { UP_TO_DATE: U, OUT_OF_DATE: O, FEEDING: F } = CellStates;
const HOST = '127.0.0.1';

function parseError(words: string[]): string {
  try {
    parseCommand(words);
  } catch (error) {
    assert(error instanceof CommandError, `${words.join(' ')}: ${String(error)}`);
    return error.message;
  }
  assert.fail(`${words.join(' ')} was accepted`);
}

describe('neoctl command parsing', () => {
  it('reads every command of the tree', () => {
    const cases: [string, Command][] = [
      ['', { kind: 'usage' }],
      ['print ids', { kind: 'printIds' }],
      ['print pt', { kind: 'printPt', min: 0, max: 0, nid: null }],
      ['print pt 1 2 S1', { kind: 'printPt', min: 1, max: 2, nid: 1 }],
      ['print node', { kind: 'printNode', type: null }],
      ['print node Storage', { kind: 'printNode', type: NodeTypes.STORAGE }],
      ['print cluster', { kind: 'printCluster' }],
      ['print primary extra ignored', { kind: 'printPrimary' }],
      ['print summary', { kind: 'printSummary' }],
      ['set cluster stopping', { kind: 'setCluster', state: ClusterStates.STOPPING }],
      ['set replicas 2', { kind: 'setReplicas', replicas: 2 }],
      ['start', { kind: 'start' }],
      ['add all', { kind: 'add', nids: 'all' }],
      ['add S3 S4', { kind: 'add', nids: [3, 4] }],
      ['add', { kind: 'add', nids: [] }],
      ['tweak', { kind: 'tweak', dryRun: false, nids: [] }],
      ['tweak -n S1', { kind: 'tweak', dryRun: true, nids: [1] }],
      ['kill S3', { kind: 'kill', nid: 3 }],
      ['kill M2', { kind: 'kill', nid: -268435454 }],
      ['drop S3', { kind: 'drop', nid: 3 }],
      ['prune_orphan 1 all', { kind: 'pruneOrphan', dryRun: true, nids: 'all' }],
      ['prune_orphan 0 S1 S2', { kind: 'pruneOrphan', dryRun: false, nids: [1, 2] }],
      ['prune_orphan 1', { kind: 'pruneOrphan', dryRun: true, nids: [] }],
      ['truncate tid:0x10', { kind: 'truncate', tid: p64(16n) }],
      ['truncate TID:1', { kind: 'truncate', tid: p64(1n) }],
      ['flush_log', { kind: 'flushLog' }],
    ];
    for (const [line, expected] of cases) {
      assert.deepEqual(parseCommand(line === '' ? [] : line.split(' ')), expected, line);
    }
  });

  it('reads check arguments as NEO does: P:REF pairs, then MIN_TID and MAX_TID, the rest ignored', () => {
    const check = (line: string) => parseCommand(line.split(' '));
    assert.deepEqual(check('check 0: 1: 2: 3:'), {
      kind: 'check',
      partitions: new Map([[0, null], [1, null], [2, null], [3, null]]),
      everyPartition: null,
      minTid: ZERO_TID,
      maxTid: null,
    });
    assert.deepEqual(check('check 1:S1 2:'), {
      kind: 'check', partitions: new Map([[1, 1], [2, null]]), everyPartition: null, minTid: ZERO_TID, maxTid: null,
    });
    const command = check('check 0: 0 1795315361.5 ignored');
    assert.equal(command.kind, 'check');
    if (command.kind !== 'check') return;
    // Timestamp 0 is 1970-01-01, not TID 0.
    assert.equal(tidToHex(command.minTid), '023c2b0000000000');
    assert.equal(tidToHex(command.maxTid!), '040d2d82b1111111');
    // A bare partition number is MIN_TID; tid: values are P:REF pairs and fail as node ids.
    assert.deepEqual(check('check 0'), {
      kind: 'check', partitions: new Map(), everyPartition: null, minTid: tidFromTime(0), maxTid: null,
    });
    assert.match(parseError(['check', '0:', 'tid:0x0']), /invalid node id/);
    // ':REF' (or ':') stands for every partition, as in NEO's neoctl.
    assert.deepEqual(check('check :S2'), {
      kind: 'check', partitions: new Map(), everyPartition: { reference: 2 }, minTid: ZERO_TID, maxTid: null,
    });
    assert.match(parseError(['check', '0:', ':']), /cannot follow listed partitions/);
  });

  it('reads TIDs as tid:<integer> or a UNIX timestamp in UTC', () => {
    assert.equal(tidToHex(parseTidArgument('1795315361.5')), '040d2d82b1111111');
    assert.equal(tidToHex(parseTidArgument('tid:0x40d2d85d8b662cf')), '040d2d85d8b662cf');
    assert.equal(tidToHex(parseTidArgument('tid:257684787499560686')), '03937af2eeeeeeee');
    assert.equal(tidToHex(parseTidArgument('tid:0o17')), '000000000000000f');
    assert.equal(tidToHex(parseTidArgument('tid:0b101')), '0000000000000005');
    for (const bad of ['foo', 'tid:', 'tid:x', 'tid:0x1ffffffffffffffff', 'tid:-1', 'tid:012']) {
      assert.throws(() => parseTidArgument(bad), CommandError, bad);
    }
  });

  it('refuses bad commands and arguments with a clear message', () => {
    assert.equal(parseError(['foo']), 'invalid command: foo');
    assert.equal(parseError(['print', 'foo']), 'invalid command: print foo');
    assert.equal(parseError(['set', 'replicas', '-1']), 'invalid number of replicas');
    assert.match(parseError(['print']), /^incomplete command: print/);
    assert.match(parseError(['set']), /^incomplete command: set/);
    assert.match(parseError(['print', 'cluster', '--x']), /unexpected arguments/);
    assert.match(parseError(['print', 'ids', 'x']), /unexpected arguments/);
    assert.match(parseError(['print', 'node', 'foo']), /unknown node type 'foo'/);
    assert.match(parseError(['print', 'node', 'a', 'b']), /too many/);
    assert.match(parseError(['print', 'pt', 'x']), /not an integer/);
    assert.match(parseError(['set', 'cluster', 'FOO']), /unknown cluster state 'FOO'/);
    assert.match(parseError(['set', 'cluster']), /exactly one/);
    assert.match(parseError(['set', 'replicas', 'x']), /not an integer/);
    for (const node of ['s1', 'X1', '1', 'S']) assert.match(parseError(['kill', node]), /invalid node id/);
    assert.match(parseError(['kill']), /exactly one node/);
    assert.match(parseError(['drop', 'S1', 'S2']), /exactly one node/);
    assert.match(parseError(['add', 'all', 'S1']), /invalid node id "all"/);
    assert.match(parseError(['tweak', '-n', '-n']), /invalid node id "-n"/);
    assert.match(parseError(['prune_orphan']), /missing dry_run/);
    assert.match(parseError(['prune_orphan', '2', 'all']), /0 or 1/);
    assert.match(parseError(['truncate']), /exactly one TID/);
    assert.match(parseError(['truncate', 'foo']), /invalid TID 'foo'/);
    assert.match(parseError(['start', 'now']), /unexpected arguments/);
    assert.match(parseError(['flush_log', 'x']), /unexpected arguments/);
  });

  it('lists the commands in NEO order, with the TID syntax last', () => {
    const lines = usageText().split('\n');
    assert.equal(lines[0], 'Available commands:');
    const words = lines.filter((line) => /^(  )?[a-z_]+$/.test(line)).map((line) => line.trim());
    assert.deepEqual(words, [
      'print', 'ids', 'pt', 'node', 'cluster', 'primary', 'summary', 'set', 'cluster', 'replicas',
      'check', 'start', 'add', 'tweak', 'drop', 'kill', 'prune_orphan', 'truncate', 'flush_log',
    ]);
    assert.equal(lines[2], '  ids');
    assert.equal(lines[4], '    ', 'each help text ends with a line of its indentation');
    assert.match(lines[lines.length - 1]!, /^The syntax of « TID » arguments is either tid:<integer>/);
  });
});

describe('neoctl output', () => {
  const storage = (nid: number, port: number, state = NodeStates.RUNNING, time: number | null = 1795309525.2773912) =>
    [NodeTypes.STORAGE, { host: HOST, port }, nid, state, time] as WireNodeInfo;

  it('prints UTC times as Python str(datetime) does', () => {
    assert.equal(formatUtcTime(1795309525.2773912), '2026-11-22 01:05:25.277391');
    assert.equal(formatUtcTime(0), '1970-01-01 00:00:00');
    assert.equal(formatUtcTime(951782400.5), '2000-02-29 00:00:00.500000');
    assert.equal(formatUtcTime(1.9999999), '1970-01-01 00:00:02');
  });

  it('prints node lists with padded columns, sorted by NID, clients without address', () => {
    const nodes: WireNodeInfo[] = [
      storage(1, 21010),
      [NodeTypes.CLIENT, null, -536870911, NodeStates.RUNNING, 1795309530.2419333],
      [NodeTypes.MASTER, { host: HOST, port: 21000 }, -268435455, NodeStates.RUNNING, null],
    ];
    assert.equal(formatNodeListText(nodes), [
      'C1 | CLIENT  |                 | RUNNING | 2026-11-22 01:05:30.241933',
      'M1 | MASTER  | 127.0.0.1:21000 | RUNNING | None',
      'S1 | STORAGE | 127.0.0.1:21010 | RUNNING | 2026-11-22 01:05:25.277391',
    ].join('\n'));
    assert.equal(formatNodeListText([nodes[1]!]), 'C1 | CLIENT |  | RUNNING | 2026-11-22 01:05:30.241933');
    assert.equal(formatNodeListText([]), 'Empty list!');
  });

  it('prints the partition table as a grid, with a ruler above 10 partitions', () => {
    const rows: WireRow[] = [[[1, U], [2, U]], [[1, U], [3, O]], [[1, F], [3, O]], [[1, U], [2, U]]];
    const storages = [storage(1, 1), storage(2, 2, NodeStates.DOWN), storage(3, 3), storage(4, 4, NodeStates.PENDING)];
    assert.deepEqual(formatPartitionGrid(rows, storages), ['S1 R UUFU', 'S2 D U..U', 'S3 R .OO.']);
    // A RUNNING storage without cells is shown, a PENDING one is not.
    assert.deepEqual(formatPartitionGrid([[[1, U]]], [storage(1, 1), storage(2, 2), storage(3, 3, NodeStates.PENDING)]), [
      'S1 R U',
      'S2 R .',
    ]);
    const twelve: WireRow[] = Array.from({ length: 12 }, (_, p) => [[(p % 2) + 1, U]]);
    assert.deepEqual(formatPartitionGrid(twelve, [storage(1, 1), storage(2, 2)]), [
      '             10v',
      'S1 R U.U.U.U.U.U.',
      'S2 R .U.U.U.U.U.U',
    ]);
    assert.deepEqual(formatPartitionGrid([[], []], []), []);
  });

  it('prints partition rows with 3-digit offsets', () => {
    assert.deepEqual(formatRowList([[[2, U]], [[1, U], [3, O]], []], 9), [
      '009 | S2 - UP_TO_DATE |',
      '010 | S1 - UP_TO_DATE | S3 - OUT_OF_DATE |',
      '011 |',
    ]);
  });

  it('prints the summary header as Python json.dumps', () => {
    assert.equal(formatMonitorHeader([], []), '# {}');
    assert.equal(formatMonitorHeader([null], []), '# {"warning": [null]}');
    assert.equal(formatMonitorHeader([null], [null, 'backup']), '# {"warning": [null], "problem": [null, "backup"]}');
  });
});

// ---------------------------------------------------------------------------------------------
// Replay of the captured neoctl runs

function decodeLine(line: TranscriptLine): Packet {
  const reader = new PacketReader();
  let packet: Packet | undefined;
  reader.push(Buffer.concat([Buffer.from('92a34e454f05', 'hex'), Buffer.from(line.raw_hex, 'hex')]), (p) => {
    packet = p;
  });
  assert(packet !== undefined);
  return packet;
}

/** Plays the admin of one recorded ctl connection: checks each request, gives the recorded answer. */
class ReplayedAdmin implements AdminRequester {
  readonly #requests: TranscriptLine[];
  readonly #answers: TranscriptLine[];

  constructor(lines: TranscriptLine[], ctl: string) {
    const packets = lines.filter((line) => line.name !== 'Handshake').sort((a, b) => a.seq - b.seq);
    this.#requests = packets.filter((line) => line.from === ctl);
    this.#answers = packets.filter((line) => line.to === ctl);
  }

  async ask<N extends PacketName>(name: N, args: ArgsOf<N>): Promise<Answer> {
    const request = this.#requests.shift();
    assert(request !== undefined, `unexpected request ${name}`);
    assert.equal(encodePacket(request.msg_id!, name, args).toString('hex'), request.raw_hex, `request ${name}`);
    const line = this.#answers.shift();
    assert(line !== undefined, `no answer to ${name}`);
    const answer = decodeLine(line);
    if (answer.info.name === 'Error') {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      if (code === ErrorCodes.DENIED.value) throw new CtlFailure(message);
    }
    return { name: answer.info.name, args: answer.args };
  }

  async notify(): Promise<void> {
    assert.fail('no notification in the scenario');
  }

  get done(): boolean {
    return this.#requests.length === 0 && this.#answers.length === 0;
  }
}

describe('neoctl replaying the captured scenario', () => {
  const transcripts = new Map(readTranscripts().map(({ file, lines }) => [file, lines]));
  const steps = new Map<string, Record<string, string>>(
    (readSpecJson('transcripts/scenario.json').steps as { file: string; notes: Record<string, string> }[])
      .map((step) => [step.file, step.notes]),
  );
  const runs: [file: string, ctl: string, command: string, note: string][] = [
    ['00-cluster-start.jsonl', 'ctl0', 'print cluster', 'print cluster'],
    ['00-cluster-start.jsonl', 'ctl1', 'print node storage', 'print node'],
    ['00-cluster-start.jsonl', 'ctl2', 'start', 'start'],
    ['00-cluster-start.jsonl', 'ctl3', 'print cluster', 'print cluster after start'],
    ['01-ctl-print.jsonl', 'ctl4', 'print cluster', 'print cluster'],
    ['01-ctl-print.jsonl', 'ctl5', 'print pt', 'print pt'],
    ['01-ctl-print.jsonl', 'ctl6', 'print node', 'print node'],
    ['01-ctl-print.jsonl', 'ctl7', 'print ids', 'print ids'],
    ['14-ctl-print.jsonl', 'ctl8', 'print cluster', 'print cluster'],
    ['14-ctl-print.jsonl', 'ctl9', 'print pt', 'print pt'],
    ['14-ctl-print.jsonl', 'ctl10', 'print node', 'print node'],
    ['14-ctl-print.jsonl', 'ctl11', 'print ids', 'print ids'],
    ['15-storage-down.jsonl', 'ctl13', 'print pt', 'print pt'],
    ['15-storage-down.jsonl', 'ctl14', 'print node', 'print node'],
    ['16-storage-restart.jsonl', 'ctl15', 'print pt', 'print pt'],
    ['17-add-storage.jsonl', 'ctl17', 'add all', 'add'],
    ['17-add-storage.jsonl', 'ctl18', 'tweak', 'tweak'],
    ['17-add-storage.jsonl', 'ctl19', 'print pt', 'print pt'],
    ['17-add-storage.jsonl', 'ctl20', 'print node', 'print node'],
    ['19-check-replicas.jsonl', 'ctl21', 'check 0: 1: 2: 3:', 'check'],
    ['22-cluster-stop.jsonl', 'ctl22', 'set cluster STOPPING', 'set cluster'],
  ];
  for (const [file, ctl, command, note] of runs) {
    it(`${file}: neoctl ${command}`, async () => {
      const admin = new ReplayedAdmin(transcripts.get(file)!, ctl);
      const printed = await runCommand(parseCommand(command.split(' ')), admin);
      assert.equal(printed ?? '', steps.get(file)![note]);
      assert(admin.done, 'every recorded request was sent');
    });
  }
});
