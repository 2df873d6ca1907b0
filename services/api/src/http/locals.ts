import type { Response } from "express";
import { DEFAULT_TEAM } from "../context";

/** The caller's team, as the auth middleware established it. */
export function teamOf(res: Response): string {
  const team = res.locals.team as string | undefined;
  // Routes are only reachable through the auth middleware; fall back rather than serve another team.
  return team ?? DEFAULT_TEAM;
}
