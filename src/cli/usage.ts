/** A malformed invocation found inside an action (exit 2), e.g. a bad combination of arguments. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
