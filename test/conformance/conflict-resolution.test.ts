// ZODB's ConflictResolvingStorage and ConflictResolvingTransUndoStorage scenarios (zodb-tests.md
// §9). The PCounter classes are records `MinPO('KIND:n')` and the client's resolveConflict hook
// plays `_p_resolveConflict`: PCounter adds the deltas, PCounter2 raises ConflictError, PCounter3
// fails with an unexpected error, PCounter4 is a resolver called wrongly (TypeError).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConflictError, UndoError } from '../../src/index.js';
import type { ConflictResolver, NeoStorage } from '../../src/index.js';
import { dostore, loadValue, minpo, minpoValue, startCluster, undo } from './harness.js';
import type { ConformanceCluster } from './harness.js';

type Kind = 'PCounter' | 'PCounter2' | 'PCounter3' | 'PCounter4';

function counter(kind: Kind, value: number): Buffer {
  return minpo(`${kind}:${value}`);
}

function parse(data: Buffer): { kind: Kind; value: number } {
  const [kind, value] = String(minpoValue(data)).split(':') as [Kind, string];
  return { kind, value: Number(value) };
}

const resolveConflict: ConflictResolver = (_oid, oldState, committedState, newState) => {
  const old = parse(oldState);
  const committed = parse(committedState);
  const mine = parse(newState);
  switch (old.kind) {
    case 'PCounter': return counter('PCounter', committed.value + mine.value - old.value);
    case 'PCounter2': throw new ConflictError({ message: `${old.kind} refuses` });
    case 'PCounter3': throw new Error("AttributeError: 'PCounter3' object has no attribute 'oops'");
    case 'PCounter4': throw new TypeError('_p_resolveConflict() takes 2 positional arguments but 4 were given');
  }
};

describe('ZODB ConflictResolvingStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open({ resolveConflict });
  });
  after(() => cluster?.destroy());

  it('checkResolve(resolvable=True)', async () => {
    const { oid, tid: r0 } = await dostore(storage, { data: counter('PCounter', 0) });
    await dostore(storage, { oid, revid: r0, data: counter('PCounter', 1) });
    // Based on r0 although r1 is current: inc(5) from 0 merged with inc(1).
    await dostore(storage, { oid, revid: r0, data: counter('PCounter', 5) });
    assert.equal(parse((await storage.load(oid)).data).value, 6);
  });

  it('testUnresolvable', async () => {
    const { oid, tid: r0 } = await dostore(storage, { data: counter('PCounter2', 0) });
    await dostore(storage, { oid, revid: r0, data: counter('PCounter2', 1) });
    await assert.rejects(dostore(storage, { oid, revid: r0, data: counter('PCounter2', 3) }), ConflictError);
    assert.equal(parse((await storage.load(oid)).data).value, 1);
  });

  it('testZClassesArentResolved', { skip: 'about find_global of the Python object layer: no equivalent' }, () => {});

  for (const [name, kind] of [['testBuggyResolve1', 'PCounter3'], ['testBuggyResolve2', 'PCounter4']] as const) {
    it(name, async () => {
      const { oid, tid: r1 } = await dostore(storage, { data: counter(kind, 0) });
      await dostore(storage, { oid, revid: r1, data: counter(kind, 1) });
      await assert.rejects(dostore(storage, { oid, revid: r1, data: counter(kind, 2) }), ConflictError);
    });
  }

  it('testUndoConflictResolution', async () => {
    const { oid, tid: a } = await dostore(storage, { data: counter('PCounter', 0) });
    const { tid: b } = await dostore(storage, { oid, revid: a, data: counter('PCounter', 1) });
    await dostore(storage, { oid, revid: b, data: counter('PCounter', 3) });
    await undo(storage, b);
    assert.equal(await loadValue(storage, oid), 'PCounter:2');
  });

  it('testUndoUnresolvable', async () => {
    const { oid, tid: a } = await dostore(storage, { data: counter('PCounter2', 0) });
    const { tid: b } = await dostore(storage, { oid, revid: a, data: counter('PCounter2', 1) });
    await dostore(storage, { oid, revid: b, data: counter('PCounter2', 3) });
    await assert.rejects(undo(storage, b), UndoError);
  });
});
