// Node addresses as operators write them: `host:port`, `[ipv6]:port`, or a host alone.
//
// Hosts must be numeric (IPv4 or IPv6) or `localhost`: NEO resolves names with getaddrinfo when
// it parses its options, but name resolution is I/O that would make start-up depend on the
// resolver, and a node's address is compared with the addresses other nodes announce, so we
// insist on the numeric form the cluster will see. `localhost` is kept as a convenience and
// always means 127.0.0.1.

import type { Address } from './env.js';
import { ConfigError } from './errors.js';

const MAX_PORT = 65535;
const LOCALHOST_IPV4 = '127.0.0.1';

function bad(text: string, reason: string): ConfigError {
  return new ConfigError(`bad address '${text}': ${reason}`);
}

const IPV4_BYTE = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** A dotted quad in decimal, without leading zeros (which some parsers read as octal). */
const IPV4 = new RegExp(`^${IPV4_BYTE}(\\.${IPV4_BYTE}){3}$`);

/**
 * Returns `host` as canonical IPv6 text (lowercase, longest run of zero groups compressed), so
 * that two spellings of one address compare equal, or undefined when it is not IPv6.
 * IPv4-mapped addresses come out in hex groups (`::ffff:a00:1`).
 */
function canonicalIPv6(host: string): string | undefined {
  // The WHATWG URL parser implements both the IPv6 syntax and the serialisation we want. It
  // would silently drop tabs and newlines, hence the check of the characters first; zone ids
  // (`fe80::1%eth0`) are refused as well, as a cluster address could not carry them.
  if (!/^[0-9A-Fa-f:.]+$/.test(host)) return undefined;
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

function parseHost(text: string, host: string): string {
  if (host === '') throw bad(text, 'empty host');
  if (host.toLowerCase() === 'localhost') return LOCALHOST_IPV4;
  if (IPV4.test(host)) return host;
  const ipv6 = canonicalIPv6(host);
  if (ipv6 !== undefined) return ipv6;
  throw bad(text, `'${host}' is not a numeric IP address (host names are not resolved)`);
}

function parsePort(text: string, port: string): number {
  if (port === '') throw bad(text, 'empty port');
  if (!/^[0-9]+$/.test(port)) throw bad(text, `port '${port}' is not a number`);
  const value = Number(port);
  if (value > MAX_PORT) throw bad(text, `port ${port} is out of range 0..${MAX_PORT}`);
  return value;
}

function portOrDefault(text: string, defaultPort: number | undefined): number {
  if (defaultPort === undefined) throw bad(text, 'missing port');
  return defaultPort;
}

/**
 * Parses `host:port`, `[ipv6]:port`, `host` or `[ipv6]` (the last two take `defaultPort`, and are
 * an error without it). A bare IPv6 address without brackets is a host alone, as in NEO.
 * Port 0 is accepted: it asks the system for any free port when binding.
 */
export function parseAddress(text: string, defaultPort?: number): Address {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw bad(text, "missing ']'");
    const inside = text.slice(1, close);
    const host = canonicalIPv6(inside);
    if (host === undefined) throw bad(text, `'${inside}' is not an IPv6 address`);
    const after = text.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw bad(text, `unexpected '${after}' after ']'`);
    const port = after === '' ? portOrDefault(text, defaultPort) : parsePort(text, after.slice(1));
    return { host, port };
  }
  const colons = text.split(':').length - 1;
  if (colons === 1) {
    const colon = text.indexOf(':');
    return {
      host: parseHost(text, text.slice(0, colon)),
      port: parsePort(text, text.slice(colon + 1)),
    };
  }
  if (colons > 1 && canonicalIPv6(text) === undefined) {
    throw bad(text, 'not an IPv6 address (with a port, IPv6 needs brackets: [host]:port)');
  }
  return { host: parseHost(text, text), port: portOrDefault(text, defaultPort) };
}

/** Parses a list of addresses separated by spaces, newlines or commas (empty text: no address). */
export function parseAddressList(text: string, defaultPort?: number): Address[] {
  return text
    .split(/[\s,]+/)
    .filter((item) => item !== '')
    .map((item) => parseAddress(item, defaultPort));
}

/** `host:port`, or `[host]:port` for IPv6, so that the result parses back to the same address. */
export function formatAddress(address: Address): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
