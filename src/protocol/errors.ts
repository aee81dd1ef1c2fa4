// NEO's error codes as a JavaScript error: thrown by a handler to answer a request with an Error
// packet, and raised by `Connection.request` when the peer answers with one.

import { ErrorCodes } from './enums.js';
import type { ErrorCode } from './enums.js';

export class NeoError extends Error {
  override readonly name = 'NeoError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }

  /** e.g. "OID_NOT_FOUND: 0000000000000001" */
  override toString(): string {
    return `${this.code.name}: ${this.message}`;
  }

  /** Whether the sender of this error closes the connection after it (protocol.md §1.6). */
  get closesConnection(): boolean {
    return this.code === ErrorCodes.PROTOCOL_ERROR || this.code === ErrorCodes.NOT_READY;
  }
}

export function errorFromCode(code: number, message: string): NeoError {
  const item = ErrorCodes.info.items[code];
  if (item === undefined) return new NeoError(ErrorCodes.PROTOCOL_ERROR, `unknown error code ${code}: ${message}`);
  return new NeoError(item, message);
}

export const protocolError = (message: string) => new NeoError(ErrorCodes.PROTOCOL_ERROR, message);
export const notReady = (message = 'Retry Later') => new NeoError(ErrorCodes.NOT_READY, message);
