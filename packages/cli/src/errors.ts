/** A failure the CLI reports as `jetactor: CODE: message` and exit code 1. */
export class CliError extends Error {
  /** Stable code: the gateway's or runtime's error code, or a CLI one (`USAGE`, `UNAVAILABLE`, ...; all in docs/errors.md). */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
  }
}
