import type { ClusterDoc, CredentialRepo } from "@trainyard/db";
import {
  attemptProbes,
  type GpuInventory,
  gpuInventoryScript,
  logReadCommand,
  type NodePlan,
  type NodeProbeTarget,
  nodeProbeCommand,
  nodeProbeInput,
  type ProbeResult,
  parseGpuInventory,
  parseNodeProbe,
  parsePid,
  parseSurvivors,
  pidCommand,
  shellJoin,
  startCommand,
  stopCommand,
  survivorsCommand,
} from "@trainyard/frameworks";
import { type SshCredentials, type SshPool, type SshTarget, scanHostKey } from "@trainyard/ssh";

export interface GatewayOptions {
  stopGraceMs: number;
  logTailBytes: number;
  commandTimeoutMs: number;
}

export interface StopOutcome {
  node: string;
  /** Pids of the attempt still alive after TERM and KILL (empty means verified clean). */
  survivors: number[];
}

export interface NodeCheck {
  node: string;
  reachable: boolean;
  hostKeyFingerprint?: string;
  pinned: boolean;
  /** What nvidia-smi (on the PATH jobs get) reports; absent when the node could not be asked. */
  gpuInventory?: GpuInventory;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Everything Trainyard does on a node, for one cluster: prepare and start an attempt, probe it,
 * stop it, read its log, check reachability. Commands come from @trainyard/frameworks, which
 * quotes every value; this class only moves them over SSH.
 */
export class NodeGateway {
  constructor(
    private readonly ssh: SshPool,
    private readonly credentials: CredentialRepo,
    private readonly opts: GatewayOptions,
  ) {}

  target(cluster: ClusterDoc, nodeName: string): SshTarget {
    const node = cluster.nodes.find((n) => n.name === nodeName);
    if (!node) throw new Error(`cluster '${cluster.name}' has no node '${nodeName}'`);
    const jump = cluster.ssh.jumpHost;
    const fp = cluster.ssh.hostKeys?.[nodeName];
    return {
      host: node.host,
      port: node.port,
      user: node.user,
      ...(fp ? { hostKeyFingerprint: fp } : {}),
      ...(jump?.host
        ? { jumpHost: { host: jump.host, port: jump.port, user: jump.user, hostKeyFingerprint: jump.hostKey } }
        : {}),
    };
  }

  private creds(cluster: ClusterDoc): Promise<SshCredentials> {
    return this.credentials.openSsh(cluster.ssh.credentialId);
  }

  private async run(cluster: ClusterDoc, nodeName: string, command: string, timeoutMs = this.opts.commandTimeoutMs) {
    return this.ssh.exec(this.target(cluster, nodeName), await this.creds(cluster), command, { timeoutMs });
  }

  /** Upload the plan's files (launch.sh, env and the job's inline files) into the attempt directory. */
  async prepare(cluster: ClusterDoc, plan: NodePlan): Promise<void> {
    const modes: Record<string, number> = { env: 0o600, "launch.sh": 0o700, ...plan.modes };
    const files = Object.entries(plan.files).map(([p, content]) => ({
      path: `${plan.dir}/${p}`,
      content,
      mode: modes[p] ?? 0o644,
    }));
    try {
      await this.ssh.upload(this.target(cluster, plan.node), await this.creds(cluster), files);
    } catch (err) {
      throw await this.explainUploadFailure(cluster, plan.node, files, err as Error);
    }
  }

  /**
   * SFTP reports a full disk only as "Failure": when the node's work root has less room than the
   * attempt's files need, say so (the launch fails with that reason; nothing half-written is used,
   * as every attempt writes only under its own directory).
   */
  private async explainUploadFailure(
    cluster: ClusterDoc,
    nodeName: string,
    files: Array<{ content: string }>,
    err: Error,
  ): Promise<Error> {
    const workRoot = cluster.nodes.find((n) => n.name === nodeName)?.workRoot;
    if (!workRoot) return err;
    const needKb = Math.ceil(files.reduce((n, f) => n + Buffer.byteLength(f.content), 0) / 1024);
    try {
      const res = await this.run(cluster, nodeName, shellJoin(["df", "-Pk", "--", workRoot]));
      const availKb = Number(res.stdout.trim().split("\n").pop()?.split(/\s+/)[3]);
      if (res.code === 0 && Number.isFinite(availKb) && availKb < needKb) {
        return new Error(
          `no space left on ${nodeName}:${workRoot}: ${availKb} KB free, the attempt's files need ${needKb} KB (${err.message})`,
        );
      }
    } catch {
      // the node cannot even answer df: the upload's own error is all there is
    }
    return err;
  }

  /** Upload files (absolute paths) to a node, e.g. an attempt's inter-node SSH key and known_hosts. */
  async upload(
    cluster: ClusterDoc,
    nodeName: string,
    files: Array<{ path: string; content: string; mode: number }>,
  ): Promise<void> {
    await this.ssh.upload(this.target(cluster, nodeName), await this.creds(cluster), files);
  }

  /**
   * The node's public host key (SSH wire blob), as presented on Trainyard's own connection and
   * matched against the pinned fingerprint. Connects first if no verified connection exists yet.
   */
  async verifiedHostKey(cluster: ClusterDoc, nodeName: string): Promise<Buffer> {
    const target = this.target(cluster, nodeName);
    let key = this.ssh.verifiedHostKey(target);
    if (!key) {
      await this.run(cluster, nodeName, "true");
      key = this.ssh.verifiedHostKey(target);
    }
    if (!key) throw new Error(`no verified host key for node ${nodeName}`);
    return key;
  }

  /** Start the attempt detached (setsid) and wait until its wrapper has recorded its process group. */
  async start(cluster: ClusterDoc, plan: NodePlan, waitMs = 10_000): Promise<number> {
    const res = await this.run(cluster, plan.node, startCommand(plan.dir));
    if (res.code !== 0)
      throw new Error(`start command exited ${res.code ?? `by signal ${res.signal ?? "?"}`}: ${res.stderr.trim().slice(0, 300)}`);
    const deadline = Date.now() + waitMs;
    for (;;) {
      // The pid file alone says it started: no scan of the node's processes per poll.
      const pgid = parsePid(await this.command(cluster, plan.node, pidCommand(plan.dir)));
      if (pgid) return pgid;
      if (Date.now() > deadline) throw new Error(`wrapper did not start within ${waitMs} ms`);
      await sleep(200);
    }
  }

  /**
   * Probe every given attempt on one node in one round trip and one process scan (node-probe.ts).
   * Throws when the node cannot be asked; an attempt missing from the map was not reported.
   */
  async probeAttempts(cluster: ClusterDoc, nodeName: string, targets: NodeProbeTarget[]): Promise<Map<string, ProbeResult>> {
    const command = nodeProbeCommand({
      logTailBytes: this.opts.logTailBytes,
      metricsLines: 20,
      announcementLines: 200,
      telemetry: { path: cluster.env?.PATH },
    });
    // Room for every attempt's log tail and metrics (base64) besides the process scan; a cut-off
    // output fails to parse rather than reading as processes gone.
    const maxOutputBytes = 4 * 1024 * 1024 + targets.length * (2 * this.opts.logTailBytes + 128 * 1024);
    const res = await this.ssh.exec(this.target(cluster, nodeName), await this.creds(cluster), command, {
      timeoutMs: this.opts.commandTimeoutMs,
      stdin: nodeProbeInput(targets),
      maxOutputBytes,
    });
    if (res.code !== 0) throw new Error(`node probe exited ${res.code}: ${res.stderr.trim().slice(0, 300)}`);
    return attemptProbes(parseNodeProbe(res.stdout), targets);
  }

  async survivors(cluster: ClusterDoc, nodeName: string, dir: string, attemptId: string): Promise<number[]> {
    const res = await this.run(cluster, nodeName, survivorsCommand(dir, attemptId));
    return parseSurvivors(res.stdout);
  }

  /** TERM the attempt's processes, wait up to the grace period, KILL what is left, then verify. */
  async stop(cluster: ClusterDoc, nodeName: string, dir: string, attemptId: string): Promise<StopOutcome> {
    await this.run(cluster, nodeName, stopCommand(dir, attemptId, "TERM"));
    const deadline = Date.now() + this.opts.stopGraceMs;
    let left = await this.survivors(cluster, nodeName, dir, attemptId);
    while (left.length && Date.now() < deadline) {
      await sleep(250);
      left = await this.survivors(cluster, nodeName, dir, attemptId);
    }
    if (left.length) {
      await this.run(cluster, nodeName, stopCommand(dir, attemptId, "KILL"));
      await sleep(200);
      left = await this.survivors(cluster, nodeName, dir, attemptId);
    }
    return { node: nodeName, survivors: left };
  }

  /** Raw bytes of the attempt's output.log from an offset (collected as bytes, so UTF-8 is never split wrongly). */
  async readLog(cluster: ClusterDoc, nodeName: string, dir: string, fromByte: number, maxBytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    await this.ssh.exec(this.target(cluster, nodeName), await this.creds(cluster), logReadCommand(dir, fromByte, maxBytes), {
      timeoutMs: this.opts.commandTimeoutMs,
      maxOutputBytes: 0,
      onStdout: (c) => chunks.push(c),
    });
    return Buffer.concat(chunks);
  }

  /** Run one of the node commands built by @trainyard/frameworks and return its stdout. */
  async command(cluster: ClusterDoc, nodeName: string, command: string): Promise<string> {
    const res = await this.run(cluster, nodeName, command);
    if (res.code !== 0)
      throw new Error(`command on ${nodeName} exited ${res.code ?? res.signal}: ${res.stderr.trim().slice(0, 300)}`);
    return res.stdout;
  }

  /** Run a command and stream its stdout into `sink` (e.g. a checkpoint tar into an object store). */
  async pipeFrom(cluster: ClusterDoc, nodeName: string, command: string, sink: NodeJS.WritableStream): Promise<void> {
    const res = await this.ssh.exec(this.target(cluster, nodeName), await this.creds(cluster), command, {
      timeoutMs: 0,
      maxOutputBytes: 0,
      onStdout: (c) => sink.write(c),
    });
    sink.end();
    if (res.code !== 0)
      throw new Error(`command on ${nodeName} exited ${res.code ?? res.signal}: ${res.stderr.trim().slice(0, 300)}`);
  }

  /** Run a command with `source` piped to its stdin (e.g. a checkpoint tar from an object store). */
  async pipeTo(cluster: ClusterDoc, nodeName: string, command: string, source: NodeJS.ReadableStream): Promise<void> {
    const res = await this.ssh.exec(this.target(cluster, nodeName), await this.creds(cluster), command, {
      timeoutMs: 0,
      stdin: source,
    });
    if (res.code !== 0)
      throw new Error(`command on ${nodeName} exited ${res.code ?? res.signal}: ${res.stderr.trim().slice(0, 300)}`);
  }

  /**
   * Connect to a node: its host-key fingerprint (scanned, so a check can report a changed key),
   * whether the pin matches, and the GPUs nvidia-smi reports (count, model, memory, driver, CUDA).
   */
  async check(cluster: ClusterDoc, nodeName: string, pin?: string): Promise<NodeCheck> {
    const node = cluster.nodes.find((n) => n.name === nodeName)!;
    let fingerprint: string | undefined;
    try {
      fingerprint = await scanHostKey({ host: node.host, port: node.port }, this.opts.commandTimeoutMs);
    } catch (err) {
      return { node: nodeName, reachable: false, pinned: false, error: (err as Error).message };
    }
    const expected = pin ?? cluster.ssh.hostKeys?.[nodeName];
    if (expected && expected !== fingerprint) {
      return {
        node: nodeName,
        reachable: true,
        hostKeyFingerprint: fingerprint,
        pinned: false,
        error: `host key mismatch: pinned ${expected}, node presents ${fingerprint}`,
      };
    }
    try {
      const target = { ...this.target(cluster, nodeName), hostKeyFingerprint: expected ?? fingerprint };
      // The PATH jobs get (cluster env) decides which nvidia-smi a job would see.
      const path = cluster.env?.PATH;
      const argv = [...(path ? ["env", `PATH=${path}`] : []), "sh", "-c", gpuInventoryScript()];
      const res = await this.ssh.exec(target, await this.creds(cluster), shellJoin(argv), {
        timeoutMs: this.opts.commandTimeoutMs,
      });
      return {
        node: nodeName,
        reachable: true,
        hostKeyFingerprint: fingerprint,
        pinned: Boolean(expected),
        gpuInventory: parseGpuInventory(res.stdout),
      };
    } catch (err) {
      return {
        node: nodeName,
        reachable: false,
        hostKeyFingerprint: fingerprint,
        pinned: Boolean(expected),
        error: (err as Error).message,
      };
    }
  }
}
