/** An error whose message is safe to show the caller, with the HTTP status it maps to. */
export class UserError extends Error {
  constructor(
    readonly status: 400 | 401 | 402 | 403 | 404 | 409 | 413 | 415 | 422 | 429,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "UserError";
  }
}

export const notFound = (what: string) => new UserError(404, `${what} not found`);
export const badRequest = (message: string, details?: unknown) => new UserError(400, message, details);
export const conflict = (message: string) => new UserError(409, message);

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
