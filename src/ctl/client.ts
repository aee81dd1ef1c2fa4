// neoctl's connection to an admin node: one connection, opened on the first request, no
// identification (protocol.md §5.6), one request at a time, no timeout (as NEO's neoctl).

import type { Address, Logger, Transport } from '../core/env.js';
import { formatAddress } from '../core/address.js';
import { Connection } from '../net/connection.js';
import type { Handler } from '../net/connection.js';
import { ErrorCodes } from '../protocol/enums.js';
import type { ArgsOf, PacketName } from '../protocol/packets.js';

/** neoctl gives up: the message goes to stderr as is, and the process exits with `status`. */
export class CtlFailure extends Error {
  override readonly name = 'CtlFailure';
  readonly status: number;
  constructor(message: string, status = 1) {
    super(message);
    this.status = status;
  }
}

/** An answer of the admin: its packet name ('Error' for ACK and other codes) and arguments. */
export interface Answer {
  readonly name: string;
  readonly args: readonly unknown[];
}

/** What the commands need from a connection to the admin. */
export interface AdminRequester {
  /** Resolves with the answer; rejects with CtlFailure for DENIED, NOT_READY and lost connections. */
  ask<N extends PacketName>(name: N, args: ArgsOf<N>): Promise<Answer>;
  /** Sends a notification and resolves once it is written and the connection is closed. */
  notify<N extends PacketName>(name: N, args: ArgsOf<N>): Promise<void>;
}

interface Waiting {
  readonly resolve: (answer: Answer) => void;
  readonly reject: (error: CtlFailure) => void;
}

export class AdminClient implements AdminRequester {
  readonly #transport: Transport;
  readonly #address: Address;
  readonly #logger: Logger;
  #connection: Connection | null = null;
  #connected = false;
  #waiting: Waiting | null = null;
  #closedWaiters: (() => void)[] = [];

  constructor(transport: Transport, address: Address, logger: Logger) {
    this.#transport = transport;
    this.#address = address;
    this.#logger = logger;
  }

  ask<N extends PacketName>(name: N, args: ArgsOf<N>): Promise<Answer> {
    if (this.#waiting !== null) throw new Error('neoctl sends one request at a time');
    const connection = this.#connect();
    return new Promise<Answer>((resolve, reject) => {
      this.#waiting = { resolve, reject };
      connection.ask(name, args, (answer) => {
        if (answer === null) this.#fail(this.#lostError());
        else this.#answered({ name: answer.info.name, args: answer.args });
      });
    });
  }

  notify<N extends PacketName>(name: N, args: ArgsOf<N>): Promise<void> {
    const connection = this.#connect();
    return new Promise<void>((resolve, reject) => {
      this.#closedWaiters.push(() => (this.#connected ? resolve() : reject(this.#lostError())));
      connection.notify(name, args);
      // Ending the stream flushes the notification first.
      connection.abort();
    });
  }

  close(): void {
    this.#connection?.close();
  }

  #connect(): Connection {
    if (this.#connection !== null) {
      if (this.#connection.isClosed) throw this.#lostError();
      return this.#connection;
    }
    const handler: Handler = {
      connectionCompleted: () => {
        this.#connected = true;
      },
      connectionClosed: (_conn, error) => {
        if (error !== undefined) this.#logger.debug(`connection to the admin closed: ${error.message}`);
        this.#fail(this.#lostError());
        const waiters = this.#closedWaiters;
        this.#closedWaiters = [];
        for (const waiter of waiters) waiter();
      },
      // The admin sends some errors with a message id of its own (an invalid partition table
      // offset): like NEO's neoctl, take any Error as the answer to the request in progress.
      Error: (_conn, code, message) => this.#answered({ name: 'Error', args: [code, message] }),
    };
    this.#connection = new Connection({
      stream: this.#transport.connect(this.#address),
      handler,
      logger: this.#logger,
      label: `admin ${formatAddress(this.#address)}`,
    });
    return this.#connection;
  }

  #lostError(): CtlFailure {
    return new CtlFailure(this.#connected ? 'ERROR: Connection closed' : 'ERROR: not connected');
  }

  #answered(answer: Answer): void {
    if (answer.name === 'Error') {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      if (code === ErrorCodes.DENIED.value) return this.#fail(new CtlFailure(message));
      if (code === ErrorCodes.NOT_READY.value) return this.#fail(new CtlFailure(`ERROR: ${message}`));
    }
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve(answer);
  }

  #fail(error: CtlFailure): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(error);
  }
}
