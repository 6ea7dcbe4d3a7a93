/** A malformed invocation found inside an action (exit 2), e.g. a bad combination of arguments. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A failure the CLI itself finds, outside the store's rules (exit 1): a mountpoint that is not
 * mounted, a blob store that does not match the library's record. Printed like a domain error,
 * `smhfs: <command>: <subject>: <message> (<code>)`, so scripts read the code the same way.
 */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly subject?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
