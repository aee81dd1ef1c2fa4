import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PickleError, dumps, dumpsExtension, loads, loadsExtension } from '../../src/client/pickle.js';
import { fromTranscriptJson, readTranscripts } from '../helpers/spec.js';

/** Every non-empty extension the Python client sent in the transcripts. */
function recordedExtensions(): Buffer[] {
  const found = new Map<string, Buffer>();
  for (const { lines } of readTranscripts()) {
    for (const line of lines) {
      if (line.name !== 'AskStoreTransaction' && line.name !== 'AnswerTransactionInformation') continue;
      const args = fromTranscriptJson(line.args) as unknown[];
      const extension = args[3] as Buffer;
      if (extension.length > 0) found.set(extension.toString('hex'), extension);
    }
  }
  return [...found.values()];
}

describe('pickle', () => {
  it('reads and rewrites byte for byte the extensions of the transcripts', () => {
    const extensions = recordedExtensions();
    assert.ok(extensions.length > 0);
    for (const bytes of extensions) {
      const value = loadsExtension(bytes);
      assert.deepEqual(dumpsExtension(value), bytes, JSON.stringify(value));
    }
    assert.deepEqual(loadsExtension(Buffer.from('80037d710058040000007374657071014b03732e', 'hex')), { step: 3 });
  });

  it('writes what CPython writes for protocol 3', () => {
    // pickle.dumps(..., 3) in CPython 3.11.
    assert.equal(dumps({}).toString('hex'), '80037d71002e');
    assert.equal(dumps({ a: 1, b: 'x' }).toString('hex'),
      '80037d71002858010000006171014b0158010000006271025801000000787103752e');
    assert.equal(dumps([true, false, null]).toString('hex'), '80035d71002888894e652e');
    assert.equal(dumps(1.5).toString('hex'), '8003473ff80000000000002e');
    assert.equal(dumps(-1).toString('hex'), '80034affffffff2e');
    assert.equal(dumps(300).toString('hex'), '80034d2c012e');
    assert.equal(dumps(2 ** 40).toString('hex'), '80038a060000000000012e');
    assert.equal(dumps(Buffer.from('ab')).toString('hex'), '80034302616271002e');
    // The same string object twice is memoized: the second is a BINGET.
    assert.equal(dumps({ k: 'k' }).toString('hex'), '80037d710058010000006b71016801732e');
  });

  it('round-trips plain values', () => {
    const value = {
      text: 'héllo', bytes: Buffer.from([0, 255]), int: 123456789, big: 2n ** 70n, neg: -(2 ** 40),
      float: -0.25, list: [1, [2, {}], 'x'], dict: { nested: { t: true, f: false, n: null } },
    };
    assert.deepEqual(loads(dumps(value)), value);
    const long = Array.from({ length: 2500 }, (_, i) => i);
    assert.deepEqual(loads(dumps(long)), long);
  });

  it('reads protocol 0 and protocol 4 pickles', () => {
    // pickle.dumps({'a': [1, 'b']}, 0) and pickle.dumps({'a': 1}, 4).
    assert.deepEqual(loads(Buffer.from('(dp0\nVa\np1\n(lp2\nI1\naVb\np3\nas.', 'latin1')), { a: [1, 'b'] });
    assert.deepEqual(loads(Buffer.from('8004950a000000000000007d948c0161944b01732e', 'hex')), { a: 1 });
  });

  it('refuses pickles that build objects', () => {
    // pickle.dumps(datetime.date(2020, 1, 1), 3) starts with a GLOBAL.
    assert.throws(() => loads(Buffer.from('8003636461746574696d650a646174650a7100430407e4010171018571025271032e', 'hex')), PickleError);
    assert.throws(() => loads(Buffer.from('8003', 'hex')), PickleError);
    assert.deepEqual(dumpsExtension({}), Buffer.alloc(0));
    assert.deepEqual(loadsExtension(Buffer.alloc(0)), {});
  });
});
