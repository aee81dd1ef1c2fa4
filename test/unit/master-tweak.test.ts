// The master's tweak (cluster.md §10.3): a valid, balanced table whose replicas are spread over
// the storages' topology paths, that moves few cells and leaves a laid-out table alone.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PartitionTable } from '../../src/core/partition-table.js';
import { tweak } from '../../src/master/pt.js';
import type { CellChange } from '../../src/master/pt.js';
import { CellStates } from '../../src/protocol/enums.js';

type Paths = Readonly<Record<number, readonly string[]>>;

/** Storages of `paths` laid out in a new table: returns it, and the warnings heard. */
function newTable(numPartitions: number, numReplicas: number, paths: Paths) {
  const pt = new PartitionTable(numPartitions, numReplicas);
  const warnings: string[] = [];
  tweak(pt, nidsOf(paths), (nid) => paths[nid], (message) => warnings.push(message));
  pt.ptid = 1;
  return { pt, warnings };
}

function nidsOf(paths: Paths): number[] {
  return Object.keys(paths).map(Number);
}

/** The cells of `nids` that are not FEEDING, per partition: where each partition is meant to be. */
function placed(pt: PartitionTable, nids: readonly number[]): number[][] {
  return pt.rows.map((row) => row.filter((c) => nids.includes(c.nid) && c.state !== CellStates.FEEDING).map((c) => c.nid));
}

/** Every partition has min(nr + 1, |nids|) cells on distinct nodes, and loads differ by at most one. */
function assertValidAndBalanced(pt: PartitionTable, nids: readonly number[]): void {
  const replicas = Math.min(pt.numReplicas + 1, nids.length);
  const rows = placed(pt, nids);
  for (const row of rows) {
    assert.equal(row.length, replicas);
    assert.equal(new Set(row).size, replicas);
  }
  const loads = nids.map((nid) => rows.filter((row) => row.includes(nid)).length);
  assert(Math.max(...loads) - Math.min(...loads) <= 1, `unbalanced loads ${loads.join(' ')}`);
}

/** For each partition, the topology groups (paths cut at `depth`) of its cells. */
function groupsOfRows(pt: PartitionTable, paths: Paths, depth: number): string[][] {
  return placed(pt, nidsOf(paths)).map((row) => row.map((nid) => paths[nid]!.slice(0, depth).join('/')).sort());
}

const twoHosts: Paths = { 1: ['a', 'sda'], 2: ['a', 'sdb'], 3: ['b', 'sda'], 4: ['b', 'sdb'] };

describe('tweak: topology', () => {
  it('4 storages on 2 hosts with 1 replica: every partition has a cell on each host', () => {
    const { pt, warnings } = newTable(12, 1, twoHosts);
    assert.deepEqual(warnings, []);
    assertValidAndBalanced(pt, [1, 2, 3, 4]);
    for (const hosts of groupsOfRows(pt, twoHosts, 1)) assert.deepEqual(hosts, ['a', 'b']);
    // Without topology the ideal layout puts the first partition on S1 and S2, the same host.
    const blind = new PartitionTable(12, 1);
    tweak(blind, [1, 2, 3, 4]);
    assert.deepEqual(placed(blind, [1, 2, 3, 4])[0], [1, 2]);
  });

  it('6 storages on 3 hosts with 2 replicas: one cell of each partition per host', () => {
    const paths: Paths = {
      1: ['a', '1'], 2: ['a', '2'], 3: ['b', '1'], 4: ['b', '2'], 5: ['c', '1'], 6: ['c', '2'],
    };
    const { pt, warnings } = newTable(12, 2, paths);
    assert.deepEqual(warnings, []);
    assertValidAndBalanced(pt, nidsOf(paths));
    for (const hosts of groupsOfRows(pt, paths, 1)) assert.deepEqual(hosts, ['a', 'b', 'c']);
  });

  it('devices of one host (depth 2): each partition has its cells on distinct devices', () => {
    const paths: Paths = { 1: ['a', 'sda'], 2: ['a', 'sda'], 3: ['a', 'sdb'], 4: ['a', 'sdb'] };
    const { pt, warnings } = newTable(12, 1, paths);
    assert.deepEqual(warnings, []);
    assertValidAndBalanced(pt, nidsOf(paths));
    for (const devices of groupsOfRows(pt, paths, 2)) assert.deepEqual(devices, ['a/sda', 'a/sdb']);
  });

  it('2 hosts of 2 devices with 3 replicas: distinct devices, and hosts split 2 + 1', () => {
    const { pt, warnings } = newTable(12, 2, twoHosts);
    assert.deepEqual(warnings, []);
    assertValidAndBalanced(pt, [1, 2, 3, 4]);
    for (const devices of groupsOfRows(pt, twoHosts, 2)) assert.equal(new Set(devices).size, 3);
    for (const hosts of groupsOfRows(pt, twoHosts, 1)) assert.equal(new Set(hosts).size, 2);
  });

  it('a topology that cannot spread the replicas is ignored with a warning, the table still valid and balanced', () => {
    const paths: Paths = { 1: ['a', '1'], 2: ['a', '2'], 3: ['b', '1'] };
    const { pt, warnings } = newTable(12, 1, paths);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^Can't maximize resiliency/);
    assertValidAndBalanced(pt, [1, 2, 3]);
  });

  it('a storage without topology path makes topology ignored, with a warning', () => {
    const { pt, warnings } = newTable(12, 1, { 1: ['a'], 2: ['b'], 3: [] });
    assert.match(warnings.join('\n'), /^Can't maximize resiliency/);
    assertValidAndBalanced(pt, [1, 2, 3]);
  });

  it('needs no topology without replicas', () => {
    const { pt, warnings } = newTable(12, 0, { 1: [], 2: [] });
    assert.deepEqual(warnings, []);
    assertValidAndBalanced(pt, [1, 2]);
  });
});

describe('tweak: stability and movement', () => {
  const cases: [string, number, Paths][] = [
    ['2 hosts, 1 replica', 1, twoHosts],
    ['2 hosts, 2 replicas', 2, twoHosts],
    ['3 hosts, 5 storages, 1 replica', 1, { 1: ['a'], 2: ['b'], 3: ['c'], 4: ['a'], 5: ['b'] }],
  ];
  for (const [name, replicas, paths] of cases) {
    it(`tweaking a laid-out table again changes nothing (${name})`, () => {
      const { pt } = newTable(10, replicas, paths);
      const before = pt.toWire();
      assert.deepEqual(tweak(pt, nidsOf(paths), (nid) => paths[nid]), []);
      assert.deepEqual(pt.toWire(), before);
    });
  }

  it('adding a storage moves as few cells as any assignment of the ideal layout, and keeps moved cells FEEDING', () => {
    const numPartitions = 12;
    const { pt } = newTable(numPartitions, 1, { 1: [], 2: [], 3: [], 4: [] });
    const before = pt.toWire();
    const nids = [1, 2, 3, 4, 5];
    const changes = tweak(pt, nids);
    assertValidAndBalanced(pt, nids);
    const added = changes.filter(([, , state]) => state === CellStates.OUT_OF_DATE).length;
    assert.equal(added, fewestNewCells(before, numPartitions, 2, nids.length));
    assert.equal(changes.filter(([, , state]) => state === CellStates.FEEDING).length, added);
    assert.equal(changes.filter(([, , state]) => state === CellStates.DISCARDED).length, 0);
    // The new cells are not readable yet: the cells they replace keep serving, every row stays readable.
    for (const row of pt.rows) assert.equal(row.filter((c) => c.state !== CellStates.OUT_OF_DATE).length, 2);
    assert.deepEqual(tweak(pt, nids), []);
  });

  it('adding a storage on a new host keeps replicas on distinct hosts', () => {
    const paths: Paths = { ...twoHosts, 5: ['c', 'sda'] };
    const { pt } = newTable(12, 1, twoHosts);
    const warnings: string[] = [];
    tweak(pt, nidsOf(paths), (nid) => paths[nid], (message) => warnings.push(message));
    assert.deepEqual(warnings, []);
    assertValidAndBalanced(pt, nidsOf(paths));
    for (const hosts of groupsOfRows(pt, paths, 1)) assert.equal(new Set(hosts).size, 2);
  });

  it('leaves the cells of excluded nodes untouched and lays out the others', () => {
    const { pt } = newTable(8, 1, { 1: [], 2: [], 3: [] });
    pt.setCell(0, 3, CellStates.OUT_OF_DATE);
    const cellsOf3 = JSON.stringify(pt.cellsOfNode(3));
    const changes: CellChange[] = tweak(pt, [1, 2, 4]);
    assert(changes.every(([, nid]) => nid !== 3));
    assert.equal(JSON.stringify(pt.cellsOfNode(3)), cellsOf3);
    assertValidAndBalanced(pt, [1, 2, 4]);
  });

  it('a FEEDING cell that the new layout keeps goes back to UP_TO_DATE', () => {
    const { pt } = newTable(4, 1, { 1: [], 2: [] });
    pt.setCell(0, 1, CellStates.FEEDING);
    const changes = tweak(pt, [1, 2]);
    assert.deepEqual(changes, [[0, 1, CellStates.UP_TO_DATE]]);
  });
});

describe('tweak: bounded search', () => {
  it('lays out 1000 partitions over 10 storages of 5 hosts quickly', () => {
    const paths: Record<number, string[]> = {};
    for (let nid = 1; nid <= 10; nid++) paths[nid] = [`host${nid % 5}`, `dev${nid}`];
    for (const replicas of [1, 2, 3]) {
      const started = performance.now();
      const { pt, warnings } = newTable(1000, replicas, paths);
      assert(performance.now() - started < 2_000);
      assert.deepEqual(warnings, []);
      assertValidAndBalanced(pt, nidsOf(paths));
      for (const hosts of groupsOfRows(pt, paths, 1)) assert.equal(new Set(hosts).size, replicas + 1);
    }
  });

  it('gives up a topology too hard to meet on a big table, with a warning, instead of blocking the master', () => {
    // Deep paths over 15 storages pass the depth test but take billions of steps to meet.
    const names = [
      'r0h0d0', 'r0h0d1', 'r0h1d0', 'r0h1d1', 'r0h2d0', 'r1h0d0', 'r1h0d1', 'r1h1d0',
      'r1h2d0', 'r1h2d1', 'r2h0d0', 'r2h0d1', 'r2h1d0', 'r2h1d1', 'r2h2d0',
    ];
    const paths: Paths = Object.fromEntries(names.map((name, i) => [i + 1, [...name]]));
    const started = performance.now();
    const { pt, warnings } = newTable(1000, 3, paths);
    assert(performance.now() - started < 5_000, 'tweak took too long');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^Can't maximize resiliency/);
    assertValidAndBalanced(pt, nidsOf(paths));
  });
});

/** The fewest cells any assignment of the ideal round-robin layout to the nodes 1..n would add. */
function fewestNewCells(rows: ReturnType<PartitionTable['toWire']>, numPartitions: number, replicas: number, n: number): number {
  const slots: number[][] = Array.from({ length: n }, () => []);
  let item = 0;
  for (let partition = 0; partition < numPartitions; partition++) {
    for (let copy = 0; copy < replicas; copy++) slots[item++ % n]!.push(partition);
  }
  let fewest = Infinity;
  const assign = (node: number, free: number[], cost: number): void => {
    if (node > n) {
      fewest = Math.min(fewest, cost);
      return;
    }
    for (const slot of free) {
      const added = slots[slot]!.filter((partition) => !rows[partition]!.some(([nid]) => nid === node)).length;
      assign(node + 1, free.filter((s) => s !== slot), cost + added);
    }
  };
  assign(1, slots.map((_, slot) => slot), 0);
  return fewest;
}
