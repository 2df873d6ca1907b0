import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./infra";

/**
 * Vitest global setup for integration tests: make sure Redis, the MongoDB wire server and the
 * sshd nodes are up, and the test tools installed (idempotent and fast when they already are).
 */
export default function setup(): void {
  if (process.env.TRAINYARD_SKIP_INFRA === "1") return;
  execFileSync("bash", [join(REPO_ROOT, "scripts/infra/up.sh")], { stdio: "inherit" });
  execFileSync("bash", [join(REPO_ROOT, "scripts/infra/tools.sh")], { stdio: "inherit" });
}
