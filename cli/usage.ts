export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** A command that could not do its work for a reason outside the command line: exit code 1. */
export class CommandFailed extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
