import { INTER_NODE_SSH, renderSshConfig, renderSshShim } from "./inter-node-ssh";
import { checkPlanInput, nodeEnv } from "./node-env";
import { ATTEMPT_FILES, attemptDir, RANK_SCRIPT, renderEnvFile, renderLaunchScript, renderRankScript } from "./node-protocol";
import type { LaunchPlan, NodePlan, PlanInput } from "./plan-types";
import { shellJoin, shellQuote } from "./shell";

/**
 * Ports each node of a Horovod job gets. horovodrun and mpirun pick their own free ports for their
 * rendezvous and controllers; the one reserved port is TRAINYARD_MASTER_PORT, for the job's own use.
 */
export const HOROVOD_PORTS_PER_NODE = 1;

/** Generated files of Horovod/MPI attempts (paths relative to the attempt directory). */
export const HOROVOD_FILES = {
  hostfile: "hostfile",
  appfile: "appfile",
  discovery: "discover_hosts.sh",
  hosts: "hosts.current",
} as const;

export type HorovodLauncher = "horovodrun" | "mpirun";

/** The Horovod options of a spec with their defaults. */
export function horovodOptions(spec: Partial<Pick<PlanInput["spec"], "horovod">>): {
  launcher: HorovodLauncher;
  elastic?: { minNp: number; maxNp: number };
} {
  const h = spec.horovod;
  return { launcher: h?.launcher ?? "horovodrun", ...(h?.elastic ? { elastic: h.elastic } : {}) };
}

/** `host slots=N`, one line per node in rank order (horovodrun's and mpirun's hostfile format). */
export function renderHostfile(nodes: Array<{ host: string }>, slots: number): string {
  return nodes.map((n) => `${n.host} slots=${slots}\n`).join("");
}

/** The elastic host list the discovery script prints: `host:slots` per healthy node. */
export function renderHostsCurrent(nodes: Array<{ host: string }>, slots: number): string {
  return nodes.map((n) => `${n.host}:${slots}\n`).join("");
}

/**
 * horovodrun --host-discovery-script: prints the job's currently healthy nodes. The monitor keeps
 * hosts.current up to date (it drops a node it has lost), so Horovod Elastic stops using it.
 */
export function renderDiscoveryScript(dir: string): string {
  return `#!/bin/sh
# Trainyard (generated): Horovod Elastic host discovery. Prints host:slots for each healthy node of
# this attempt; Trainyard's monitor rewrites hosts.current when a node is lost.
exec cat ${shellQuote(`${dir}/${HOROVOD_FILES.hosts}`)}
`;
}

/** Rewrites hosts.current on the head node (atomically), as the monitor does when the gang shrinks. */
export function writeHostsCommand(headDir: string, hostsCurrent: string): string {
  const f = `${headDir}/${HOROVOD_FILES.hosts}`;
  return `/bin/sh -c ${shellQuote(`printf '%s' ${shellQuote(hostsCurrent)} >${shellQuote(`${f}.tmp`)} && mv -f ${shellQuote(`${f}.tmp`)} ${shellQuote(f)}`)}`;
}

/**
 * The command horovodrun runs for every rank: picks this node's rank.sh by HOROVOD_HOSTNAME (the
 * hostfile name horovodrun gives each slot), so each rank gets its own node's env and workdir.
 */
function dispatchScript(nodes: Array<{ host: string; dir: string }>): string {
  const cases = nodes.map((n) => `  ${shellQuote(n.host)}) exec /bin/sh ${shellQuote(`${n.dir}/${RANK_SCRIPT}`)} ;;`);
  return [
    'case "$HOROVOD_HOSTNAME" in',
    ...cases,
    "esac",
    "echo \"trainyard: no node of this attempt is named '$HOROVOD_HOSTNAME'\" >&2",
    "exit 125",
  ].join("\n");
}

/**
 * Horovod / MPI launch plan. Only the head node (rank 0) runs a launcher; it starts every rank over
 * SSH with the attempt's own key (see inter-node-ssh.ts), each rank through its node's rank.sh.
 *
 * - horovodrun (Gloo): `horovodrun -np N --hostfile <dir>/hostfile --gloo /bin/sh -c <dispatch>`;
 *   elastic: `--min-np/--max-np --host-discovery-script <dir>/discover_hosts.sh` instead of the hostfile.
 * - mpirun: `mpirun --hostfile <dir>/hostfile --mca plm_rsh_agent "ssh -F <dir>/ssh/config" --app <dir>/appfile`,
 *   the appfile placing `-np G` ranks of `<node dir>/rank.sh` on each host, in rank order.
 */
export function planHorovod(input: PlanInput): LaunchPlan {
  checkPlanInput(input, "horovod");
  const { spec, nodes } = input;
  const { gpusPerNode } = spec.resources;
  const np = nodes.length * gpusPerNode;
  const opts = horovodOptions(spec);
  if (opts.elastic && opts.launcher !== "horovodrun") throw new Error("elastic Horovod jobs need horovodrun");
  const master = nodes[0]!;
  const masterPort = master.ports[0]!;
  const dirs = nodes.map((n) => attemptDir(n.workRoot, input.jobId, input.attemptId));
  const headDir = dirs[0]!;
  const peers = nodes.map((n) => {
    if (n.port === undefined || n.user === undefined) throw new Error(`node ${n.name}: Horovod plans need its SSH port and user`);
    return { host: n.host, port: n.port, user: n.user };
  });
  const hostfile = renderHostfile(nodes, gpusPerNode);

  const headArgv =
    opts.launcher === "mpirun"
      ? [
          "mpirun",
          "--hostfile",
          `${headDir}/${HOROVOD_FILES.hostfile}`,
          "--mca",
          "plm_rsh_agent",
          `ssh -F ${headDir}/${INTER_NODE_SSH.config}`,
          "--app",
          `${headDir}/${HOROVOD_FILES.appfile}`,
        ]
      : [
          "horovodrun",
          "-np",
          String(np),
          ...(opts.elastic
            ? [
                "--min-np",
                String(opts.elastic.minNp),
                "--max-np",
                String(opts.elastic.maxNp),
                "--host-discovery-script",
                `${headDir}/${HOROVOD_FILES.discovery}`,
              ]
            : ["--hostfile", `${headDir}/${HOROVOD_FILES.hostfile}`]),
          "--gloo",
          "/bin/sh",
          "-c",
          dispatchScript(nodes.map((n, i) => ({ host: n.host, dir: dirs[i]! }))),
        ];

  const nodePlans = nodes.map((n, rank): NodePlan => {
    const dir = dirs[rank]!;
    const workdir = spec.workdir ?? dir;
    const env = nodeEnv(input, n, rank, dir, { addr: master.host, port: masterPort });
    const files: Record<string, string> = {
      ...spec.files,
      [ATTEMPT_FILES.env]: renderEnvFile(env),
      [RANK_SCRIPT]: renderRankScript({ dir, workdir, argv: spec.command }),
    };
    const modes: Record<string, number> = {};
    if (rank === 0) {
      files[ATTEMPT_FILES.launch] = renderLaunchScript({
        dir,
        workdir: dir,
        argv: headArgv,
        ...(opts.launcher === "horovodrun" ? { pathPrepend: `${dir}/${INTER_NODE_SSH.shimDir}` } : {}),
      });
      files[HOROVOD_FILES.hostfile] = hostfile;
      files[INTER_NODE_SSH.config] = renderSshConfig({ dir, attemptId: input.attemptId, peers });
      if (opts.launcher === "mpirun") {
        files[HOROVOD_FILES.appfile] = nodes
          .map((x, i) => `-np ${gpusPerNode} --host ${x.host}:${gpusPerNode} /bin/sh ${dirs[i]}/${RANK_SCRIPT}\n`)
          .join("");
      } else {
        files[INTER_NODE_SSH.shim] = renderSshShim(dir);
        modes[INTER_NODE_SSH.shim] = 0o755;
      }
      if (opts.elastic) {
        files[HOROVOD_FILES.discovery] = renderDiscoveryScript(dir);
        files[HOROVOD_FILES.hosts] = renderHostsCurrent(nodes, gpusPerNode);
        modes[HOROVOD_FILES.discovery] = 0o755;
      }
    }
    return {
      node: n.name,
      host: n.host,
      nodeRank: rank,
      dir,
      workdir,
      launches: rank === 0,
      argv: rank === 0 ? headArgv : spec.command,
      env,
      files,
      ...(Object.keys(modes).length ? { modes } : {}),
      ...(rank === 0 ? { provisioned: [INTER_NODE_SSH.privateKey, INTER_NODE_SSH.knownHosts] } : {}),
    };
  });

  return {
    framework: "horovod",
    rendezvous: opts.launcher,
    masterAddr: master.host,
    masterPort,
    portsPerNode: HOROVOD_PORTS_PER_NODE,
    ...(opts.elastic ? { elastic: { min: opts.elastic.minNp, max: opts.elastic.maxNp, unit: "processes" as const } } : {}),
    interNodeSsh: true,
    nodes: nodePlans,
  };
}

/** For display: the head's command line (what launch.sh runs). */
export const horovodCommandLine = (plan: LaunchPlan) => shellJoin(plan.nodes[0]?.argv ?? []);
