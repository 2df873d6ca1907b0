import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** What scripts/infra/up.sh wrote: the local Redis, MongoDB wire server and sshd nodes. */
export interface InfraNode {
  name: string;
  host: string;
  port: number;
  user: string;
  workRoot: string;
  hostKeyFingerprint: string;
  sshdPidFile: string;
  sshdConfig: string;
}
export interface Infra {
  redisUrl: string;
  mongoUrl: string;
  clientKeyPath: string;
  nodeEnv: Record<string, string>;
  /** Which frameworks up.sh found importable on the nodes. */
  frameworks: { pytorch: boolean; tensorflow: boolean; mpi: boolean; horovod: boolean };
  nodes: InfraNode[];
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const INFRA_DIR = process.env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra";

export function loadInfra(): Infra {
  const file = join(INFRA_DIR, "infra.json");
  if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/infra/up.sh first`);
  return JSON.parse(readFileSync(file, "utf8")) as Infra;
}

export function clientPrivateKey(infra = loadInfra()): string {
  return readFileSync(infra.clientKeyPath, "utf8");
}

/** Start or stop one node's sshd (simulates a node going away). */
export function setNodeSshd(index: number, action: "start" | "stop"): void {
  execFileSync("bash", [join(REPO_ROOT, "scripts/infra/node-sshd.sh"), action, String(index)], { stdio: "inherit" });
}
