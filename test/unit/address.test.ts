import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatAddress, parseAddress, parseAddressList } from '../../src/core/address.js';
import { ConfigError } from '../../src/core/errors.js';

function assertBadAddress(text: string, reason: RegExp, defaultPort?: number): void {
  assert.throws(
    () => parseAddress(text, defaultPort),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'EBADCONFIG');
      assert.ok(error.message.includes(`'${text}'`), error.message);
      assert.match(error.message, reason);
      return true;
    },
  );
}

describe('parseAddress', () => {
  test('host:port', () => {
    assert.deepEqual(parseAddress('10.1.2.3:10000'), { host: '10.1.2.3', port: 10000 });
  });

  test('a host alone takes the default port', () => {
    assert.deepEqual(parseAddress('10.1.2.3', 9999), { host: '10.1.2.3', port: 9999 });
    assert.deepEqual(parseAddress('[::1]', 9999), { host: '::1', port: 9999 });
    assert.deepEqual(parseAddress('::1', 0), { host: '::1', port: 0 });
  });

  test('a host alone without a default port is an error', () => {
    assertBadAddress('10.1.2.3', /missing port/);
    assertBadAddress('[::1]', /missing port/);
  });

  test('port 0 is accepted, for binding to any free port', () => {
    assert.deepEqual(parseAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  });

  test('the highest port is 65535', () => {
    assert.deepEqual(parseAddress('127.0.0.1:65535'), { host: '127.0.0.1', port: 65535 });
    assertBadAddress('127.0.0.1:65536', /out of range 0\.\.65535/);
  });

  test('localhost means 127.0.0.1', () => {
    assert.deepEqual(parseAddress('localhost:10000'), { host: '127.0.0.1', port: 10000 });
    assert.deepEqual(parseAddress('LocalHost', 5), { host: '127.0.0.1', port: 5 });
  });

  test('IPv6 in brackets, in canonical form', () => {
    assert.deepEqual(parseAddress('[::1]:10000'), { host: '::1', port: 10000 });
    assert.deepEqual(parseAddress('[FE80:0:0:0:0:0:0:A]:1'), { host: 'fe80::a', port: 1 });
    assert.deepEqual(parseAddress('[0:0::1]:0'), { host: '::1', port: 0 });
  });

  test('malformed addresses are refused with the reason', () => {
    assertBadAddress('127.0.0.1:http', /port 'http' is not a number/);
    assertBadAddress('127.0.0.1:-1', /is not a number/);
    assertBadAddress('127.0.0.1:', /empty port/);
    assertBadAddress(':10000', /empty host/);
    assertBadAddress('', /empty host/, 1);
    assertBadAddress('example.com:80', /not a numeric IP address/);
    assertBadAddress('300.1.1.1:80', /not a numeric IP address/);
    assertBadAddress('1.2.3.4:80:90', /needs brackets/);
    assertBadAddress('01.2.3.4:80', /not a numeric IP address/);
    assertBadAddress('[::1', /missing '\]'/);
    assertBadAddress('[::1]10000', /unexpected '10000'/);
    assertBadAddress('[1.2.3.4]:80', /not an IPv6 address/);
    assertBadAddress('[fe80::1%eth0]:80', /not an IPv6 address/);
    assertBadAddress('[::\n1]:80', /not an IPv6 address/);
    assertBadAddress('1:2', /is not a numeric IP address/);
    assertBadAddress(' 1.2.3.4:80', /not a numeric IP address/);
  });
});

describe('formatAddress', () => {
  test('IPv4 as host:port, IPv6 in brackets', () => {
    assert.equal(formatAddress({ host: '127.0.0.1', port: 10000 }), '127.0.0.1:10000');
    assert.equal(formatAddress({ host: '::1', port: 0 }), '[::1]:0');
  });

  test('the formatted address parses back to the same address', () => {
    for (const text of ['127.0.0.1:1', '[::1]:2', '[2001:db8::8:800:200c:417a]:65535']) {
      assert.equal(formatAddress(parseAddress(text)), text);
    }
  });
});

describe('parseAddressList', () => {
  test('addresses separated by spaces, commas or newlines', () => {
    assert.deepEqual(parseAddressList('127.0.0.1:1 [::1]:2,10.0.0.1:3\n  10.0.0.2:4 ,10.0.0.3:5'), [
      { host: '127.0.0.1', port: 1 },
      { host: '::1', port: 2 },
      { host: '10.0.0.1', port: 3 },
      { host: '10.0.0.2', port: 4 },
      { host: '10.0.0.3', port: 5 },
    ]);
  });

  test('empty text is an empty list', () => {
    assert.deepEqual(parseAddressList(''), []);
    assert.deepEqual(parseAddressList('  \n '), []);
  });

  test('hosts alone take the default port', () => {
    assert.deepEqual(parseAddressList('10.0.0.1 10.0.0.2:7', 10000), [
      { host: '10.0.0.1', port: 10000 },
      { host: '10.0.0.2', port: 7 },
    ]);
  });

  test('one malformed address makes the list an error naming it', () => {
    assert.throws(() => parseAddressList('127.0.0.1:1 127.0.0.1:x'), /bad address '127\.0\.0\.1:x'/);
  });
});
