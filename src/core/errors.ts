// Errors shared by every node's start-up code.

/**
 * A bad command line, configuration file or address: the operator's mistake, reported with a
 * message that says what to fix. The CLI prints the message and exits without a stack trace.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'EBADCONFIG';
  /** The option at fault, as NEO spells it (e.g. `bind`), when there is one. */
  readonly option: string | undefined;

  constructor(message: string, option?: string, options?: ErrorOptions) {
    super(message, options);
    this.option = option;
  }
}
