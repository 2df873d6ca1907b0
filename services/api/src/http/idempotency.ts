import { badRequest } from "@trainyard/common";

export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The Idempotency-Key header's value: undefined when absent, a 400 when malformed. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header : [header];
  if (value.length !== 1 || !IDEMPOTENCY_KEY_PATTERN.test(value[0]!)) {
    throw badRequest("Idempotency-Key must be 1-128 characters of letters, digits, '_', '.', ':' or '-'");
  }
  return value[0];
}
