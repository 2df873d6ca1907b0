import type { JobStatus } from "@trainyard/common";

/**
 * Exit codes of every command (documented in docs/cli.md). Commands that follow a job exit with
 * the job's outcome.
 */
export const EXIT = {
  OK: 0,
  /** The job ended FAILED, or a check found a problem (e.g. an unreachable node). */
  FAILED: 1,
  /** Bad command line, unreadable or invalid file. Nothing was sent. */
  USAGE: 2,
  /** The API refused the request (a 4xx other than those below). */
  REFUSED: 3,
  /** 401 or 403: no key, a bad key, or a role too low. */
  AUTH: 4,
  /** 404: no such job, cluster, key… (or another team's). */
  NOT_FOUND: 5,
  /** The API could not be reached, or answered 5xx. */
  UNAVAILABLE: 6,
  /** The job ended CANCELLED. */
  CANCELLED: 7,
  /** The job ended STOPPED_BUDGET. */
  STOPPED_BUDGET: 8,
  /** Interrupted (Ctrl-C) while following; the job keeps running. */
  INTERRUPTED: 130,
} as const;

export function exitCodeForStatus(status: JobStatus | string): number {
  switch (status) {
    case "SUCCEEDED":
      return EXIT.OK;
    case "CANCELLED":
      return EXIT.CANCELLED;
    case "STOPPED_BUDGET":
      return EXIT.STOPPED_BUDGET;
    default:
      return EXIT.FAILED;
  }
}

export function exitCodeForHttpStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.AUTH;
  if (status === 404) return EXIT.NOT_FOUND;
  if (status >= 500) return EXIT.UNAVAILABLE;
  return EXIT.REFUSED;
}

/** An error the CLI reports as one line on stderr, exiting with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number = EXIT.USAGE,
  ) {
    super(message);
  }
}
