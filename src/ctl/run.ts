// Running one neoctl command against the admin: the requests it sends, in order, and the text it
// prints (spec/neoctl.md §3).

import type { WireNodeInfo } from '../core/node-table.js';
import type { WireRow } from '../core/partition-table.js';
import { ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../protocol/enums.js';
import type { ClusterState } from '../protocol/enums.js';
import { ZERO_TID, nidToString } from '../protocol/ids.js';
import type { ArgsOf, PacketName } from '../protocol/packets.js';
import { CtlFailure } from './client.js';
import type { AdminRequester, Answer } from './client.js';
import type { Command } from './commands.js';
import { usageText } from './commands.js';
import {
  formatBackupIds,
  formatLastIds,
  formatMonitorHeader,
  formatNodeListText,
  formatPartitionGrid,
  formatPartitionHeader,
  formatRowList,
} from './format.js';

/** The arguments of an answer of the expected type; anything else ends neoctl with an error. */
function expect<N extends PacketName>(answer: Answer, name: N): ArgsOf<N> {
  if (answer.name === name) return answer.args as unknown as ArgsOf<N>;
  throw unexpected(answer);
}

/** The message of an ACK (the answer of requests without an answer packet of their own). */
function expectAck(answer: Answer): string {
  const [code, message] = expect(answer, 'Error');
  if (code !== ErrorCodes.ACK.value) throw unexpected(answer);
  return message;
}

function unexpected(answer: Answer): CtlFailure {
  if (answer.name === 'Error') {
    const [code, message] = answer.args as ArgsOf<'Error'>;
    const codeName = ErrorCodes.info.items[code]?.name ?? String(code);
    return new CtlFailure(`ERROR: the admin answered ${codeName}: ${message}`);
  }
  return new CtlFailure(`ERROR: unexpected answer from the admin: ${answer.name}`);
}

async function storageNodes(admin: AdminRequester): Promise<WireNodeInfo[]> {
  return expect(await admin.ask('AskNodeList', [NodeTypes.STORAGE]), 'AnswerNodeList')[0];
}

/** The grid of `print pt` and `tweak`, which needs the states of the storage nodes. */
async function partitionGrid(admin: AdminRequester, rows: readonly WireRow[]): Promise<string> {
  return formatPartitionGrid(rows, await storageNodes(admin)).join('\n');
}

async function storageList(admin: AdminRequester, nids: readonly number[] | 'all'): Promise<number[]> {
  if (nids !== 'all') return [...nids];
  return (await storageNodes(admin)).flatMap(([, , nid]) => (nid === null ? [] : [nid]));
}

async function setClusterState(admin: AdminRequester, state: ClusterState): Promise<string> {
  return expectAck(await admin.ask('SetClusterState', [state]));
}

/**
 * Sends the requests of `command` and returns the text to print (without the final newline), or
 * null when nothing is printed. Throws CtlFailure when neoctl must fail.
 */
export async function runCommand(command: Command, admin: AdminRequester): Promise<string | null> {
  switch (command.kind) {
    case 'usage':
      return usageText();
    case 'printIds': {
      const [ptid, backupTid] = expect(await admin.ask('AskRecovery', []), 'AnswerRecovery');
      if (backupTid !== null) {
        const [lastTid] = expect(await admin.ask('AskLastTransaction', []), 'AnswerLastTransaction');
        return formatBackupIds(ptid, backupTid, lastTid);
      }
      const [lastTid, lastOid] = expect(await admin.ask('AskLastIDs', []), 'AnswerLastIDs');
      return formatLastIds(ptid, lastTid ?? ZERO_TID, lastOid ?? ZERO_TID);
    }
    case 'printPt': {
      const { min, max, nid } = command;
      const [ptid, numReplicas, rows] = expect(
        await admin.ask('AskPartitionList', [min, max, nid]),
        'AnswerPartitionList',
      );
      const header = formatPartitionHeader(ptid, numReplicas);
      const body = min !== 0 || max !== 0 ? formatRowList(rows, min).join('\n') : await partitionGrid(admin, rows);
      return `${header}\n${body}`;
    }
    case 'printNode': {
      const [nodes] = expect(await admin.ask('AskNodeList', [command.type]), 'AnswerNodeList');
      return formatNodeListText(nodes);
    }
    case 'printCluster': {
      const [state] = expect(await admin.ask('AskClusterState', []), 'AnswerClusterState');
      return state === null ? 'None' : state.name;
    }
    case 'printPrimary': {
      const [nid] = expect(await admin.ask('AskPrimary', []), 'AnswerPrimary');
      return nidToString(nid);
    }
    case 'printSummary': {
      const [warnings, problems, summary] = expect(
        await admin.ask('AskMonitorInformation', []),
        'AnswerMonitorInformation',
      );
      return `${formatMonitorHeader(warnings, problems)}\n${summary}`;
    }
    case 'setCluster':
      return setClusterState(admin, command.state);
    case 'start':
      return setClusterState(admin, ClusterStates.VERIFYING);
    case 'setReplicas':
      return expectAck(await admin.ask('SetNumReplicas', [command.replicas]));
    case 'add': {
      const nids = await storageList(admin, command.nids);
      return expectAck(await admin.ask('AddPendingNodes', [nids]));
    }
    case 'tweak': {
      const [changed, rows] = expect(
        await admin.ask('TweakPartitionTable', [command.dryRun, [...command.nids]]),
        'AnswerTweakPartitionTable',
      );
      return changed ? partitionGrid(admin, rows) : 'No change done.';
    }
    case 'kill':
      return expectAck(await admin.ask('SetNodeState', [command.nid, NodeStates.DOWN]));
    case 'drop':
      return expectAck(await admin.ask('SetNodeState', [command.nid, NodeStates.UNKNOWN]));
    case 'pruneOrphan': {
      const nids = await storageList(admin, command.nids);
      return expectAck(await admin.ask('Repair', [nids, command.dryRun]));
    }
    case 'truncate':
      expectAck(await admin.ask('Truncate', [command.tid]));
      return null;
    case 'check': {
      const partitions = new Map(command.partitions);
      if (command.everyPartition !== null) {
        const [, , rows] = expect(await admin.ask('AskPartitionList', [0, 0, null]), 'AnswerPartitionList');
        for (let partition = 0; partition < rows.length; partition++) {
          partitions.set(partition, command.everyPartition.reference);
        }
      }
      expectAck(await admin.ask('CheckReplicas', [partitions, command.minTid, command.maxTid]));
      return null;
    }
    case 'flushLog':
      await admin.notify('FlushLog', []);
      return null;
  }
}
