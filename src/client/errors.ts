// The errors of the storage API, after ZODB's POSException (zodb-api.md §16). Each has `name`
// and, where ZODB has them, the same fields (oid, serials).

import { tidToHex } from '../protocol/ids.js';

/** Root of the storage API's errors. */
export class POSError extends Error {
  override readonly name: string = 'POSError';
}

/** Missing object or revision, or a deleted object. */
export class POSKeyError extends POSError {
  override readonly name: string = 'POSKeyError';
  readonly oid: Buffer;
  constructor(oid: Buffer, message = `0x${tidToHex(oid)}`) {
    super(message);
    this.oid = oid;
  }
}

export interface ConflictErrorOptions {
  oid?: Buffer;
  /** (committed serial, serial this transaction read), as ZODB's `serials`. */
  serials?: [Buffer, Buffer];
  data?: Buffer;
  message?: string;
}

/** A concurrent change that could not be resolved: retry the whole transaction. */
export class ConflictError extends POSError {
  override readonly name: string = 'ConflictError';
  readonly oid: Buffer | undefined;
  readonly serials: [Buffer, Buffer] | undefined;
  readonly data: Buffer | undefined;
  constructor(options: ConflictErrorOptions = {}, defaultMessage = 'database conflict error') {
    let message = options.message ?? defaultMessage;
    if (options.oid !== undefined) message += ` (oid 0x${tidToHex(options.oid)}`;
    if (options.serials !== undefined) {
      message += `, serial this txn started with 0x${tidToHex(options.serials[1])}`
        + ` < serial currently committed 0x${tidToHex(options.serials[0])}`;
    }
    if (options.oid !== undefined) message += ')';
    super(message);
    this.oid = options.oid;
    this.serials = options.serials;
    this.data = options.data;
  }

  /** The serial the transaction read (ZODB's get_old_serial). */
  get oldSerial(): Buffer | undefined {
    return this.serials?.[1];
  }

  /** The serial committed meanwhile (ZODB's get_new_serial). */
  get newSerial(): Buffer | undefined {
    return this.serials?.[0];
  }
}

export class ReadConflictError extends ConflictError {
  override readonly name: string = 'ReadConflictError';
  constructor(options: ConflictErrorOptions = {}) {
    super(options, 'database read conflict error');
  }
}

/** The primary master was lost while reading: the application should retry (a ReadConflictError). */
export class NEOPrimaryMasterLost extends ReadConflictError {
  override readonly name: string = 'NEOPrimaryMasterLost';
}

export class UndoError extends POSError {
  override readonly name: string = 'UndoError';
  readonly reason: string;
  readonly oid: Buffer | undefined;
  constructor(reason: string, oid?: Buffer) {
    super(oid === undefined ? reason : `Undo error 0x${tidToHex(oid)}: ${reason}`);
    this.reason = reason;
    this.oid = oid;
  }
}

/** Base of storage-side errors. */
export class StorageError extends POSError {
  override readonly name: string = 'StorageError';
}

/** A call with a transaction that is not the one being committed, or in the wrong phase. */
export class StorageTransactionError extends StorageError {
  override readonly name: string = 'StorageTransactionError';
}

export class ReadOnlyError extends StorageError {
  override readonly name: string = 'ReadOnlyError';
  constructor(message = 'read-only storage') {
    super(message);
  }
}

/** The storage was closed. */
export class StorageClosedError extends StorageError {
  override readonly name: string = 'StorageClosedError';
  constructor(message = 'storage closed') {
    super(message);
  }
}

/** A bad neo:// URI or option. */
export class StorageConfigError extends StorageError {
  override readonly name: string = 'StorageConfigError';
}
