import { readFileSync } from "node:fs";
import { type ApiKeyView, JOB_STATUSES, type JobView, ROLES, type Role, TERMINAL_STATUSES } from "@trainyard/common";
import { Command, InvalidArgumentError, Option } from "commander";
import { ApiClient } from "./client";
import { bashCompletion, zshCompletion } from "./completion";
import {
  type CliConfig,
  configPath,
  DEFAULT_CONTEXT,
  readConfig,
  removeContext,
  resolveContext,
  setContext,
  writeConfig,
} from "./config";
import { CliError, EXIT } from "./exit";
import { followJob, followLog } from "./follow";
import { age, jobDetail, jobRows, lastLines, monthRange, table, usd } from "./format";
import { type Io, sleep } from "./io";
import { platformDown, platformStatus, platformUp, statusText } from "./platform";
import { DEFAULT_REPLICAS, defaultPlatformDir, SERVICES } from "./platform-state";
import { loadClusterSpec, loadJobSpec } from "./specs";

export interface CliEnv {
  io: Io;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: followers stop and report the job still running. */
  signal: AbortSignal;
}

const int =
  (name: string, min = 0) =>
  (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`);
    return n;
  };

/** Builds the whole command tree; `run` sets `exitCode` on the returned holder. */
export function buildProgram(ctx: CliEnv): { program: Command; result: { code: number } } {
  const { io, env } = ctx;
  const result = { code: EXIT.OK as number };
  const program = new Command("trainyard")
    .description("Trainyard: distributed training on GPU machines you reach over SSH")
    .version("0.1.0")
    .option("--context <name>", "the context (API URL and key) to use instead of the current one")
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const cfgPath = () => configPath(env);
  const config = () => readConfig(cfgPath());
  const client = () => {
    const r = resolveContext(config(), program.opts().context, env);
    return new ApiClient(r.url, r.token);
  };
  const jsonOpt = () => new Option("--json", "print JSON only on stdout");

  // ---- login and contexts ----
  program
    .command("login")
    .description("Check a key against an API and save it as a context (in ~/.config/trainyard/config.json, mode 0600)")
    .requiredOption("--url <url>", "the API's base URL, e.g. http://127.0.0.1:8080")
    .requiredOption("--token <key>", "the API key; '-' reads it from stdin")
    .option("--name <context>", "the context to save it as (default: --context, else 'default')")
    .addOption(jsonOpt())
    .action(async (o: { url: string; token: string; name?: string; json?: boolean }) => {
      const token = o.token === "-" ? readFileSync(0, "utf8").trim() : o.token;
      let url: URL;
      try {
        url = new URL(o.url);
      } catch {
        throw new CliError(`--url '${o.url}' is not a URL`, EXIT.USAGE);
      }
      const base = url.toString().replace(/\/+$/, "");
      const me = await new ApiClient(base, token).me();
      const name = o.name ?? program.opts().context ?? DEFAULT_CONTEXT;
      writeConfig(cfgPath(), setContext(config(), name, { url: base, token }));
      if (o.json) io.json({ context: name, url: base, team: me.team, role: me.role, keyName: me.keyName });
      else io.err(`logged in to ${base} as key '${me.keyName}' (team ${me.team}, role ${me.role}); context '${name}' is current`);
    });

  const context = program.command("context").description("Named contexts: several APIs or keys side by side");
  context
    .command("ls")
    .description("List contexts (never their keys)")
    .addOption(jsonOpt())
    .action((o: { json?: boolean }) => {
      const c = config();
      const items = Object.entries(c.contexts).map(([name, x]) => ({ name, url: x.url, current: name === c.current }));
      if (o.json) io.json({ current: c.current ?? null, items });
      else
        io.out(
          table(
            ["CURRENT", "NAME", "URL"],
            items.map((i) => [i.current ? "*" : "", i.name, i.url]),
          ),
        );
    });
  context
    .command("use <name>")
    .description("Make a context the current one")
    .action((name: string) => {
      const c = config();
      if (!c.contexts[name])
        throw new CliError(`no context named '${name}' (known: ${Object.keys(c.contexts).join(", ") || "none"})`, EXIT.USAGE);
      writeConfig(cfgPath(), { ...c, current: name });
      io.err(`context '${name}' is current (${c.contexts[name]!.url})`);
    });
  context
    .command("current")
    .description("Print the current context's name")
    .action(() => {
      const c = config();
      const name = program.opts().context ?? (env.TRAINYARD_CONTEXT || undefined) ?? c.current;
      if (!name) throw new CliError("no current context; run 'trainyard login'", EXIT.AUTH);
      io.out(name);
    });
  context
    .command("rm <name>")
    .description("Forget a context and its key")
    .action((name: string) => {
      writeConfig(cfgPath(), removeContext(config(), name));
      io.err(`context '${name}' removed`);
    });

  program
    .command("whoami")
    .description("The key in use: its name, team and role")
    .addOption(jsonOpt())
    .action(async (o: { json?: boolean }) => {
      const me = await client().me();
      if (o.json) io.json(me);
      else io.out(`key ${me.keyName} (${me.keyId}), team ${me.team}, role ${me.role}`);
    });

  // ---- clusters ----
  const cluster = program.command("cluster").description("Clusters of SSH nodes");
  cluster
    .command("add")
    .description("Register a cluster from YAML/JSON; the private key is read from ssh.privateKeyFile")
    .requiredOption("-f, --file <path>", "cluster spec (YAML or JSON)")
    .addOption(jsonOpt())
    .action(async (o: { file: string; json?: boolean }) => {
      const spec = loadClusterSpec(o.file);
      const view = await client().addCluster(spec);
      if (o.json) io.json(view);
      else
        io.err(
          `cluster '${view.name}' registered (${view.id}): ${view.nodes.map((n) => `${n.name}=${n.user}@${n.host}:${n.port}`).join(", ")}`,
        );
    });
  cluster
    .command("ls")
    .description("The clusters your team owns or shares")
    .addOption(jsonOpt())
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().listClusters();
      if (o.json) io.json({ items });
      else
        io.out(
          table(
            ["ID", "NAME", "TEAM", "NODES", "GPUS", "AGE"],
            items.map((c) => [c.id, c.name, c.team, c.nodes.length, c.nodes.reduce((n, x) => n + x.gpus, 0), age(c.createdAt)]),
          ),
        );
    });
  cluster
    .command("check <id>")
    .description("Reach every node over SSH and compare host keys with the pins; exit 1 if a node fails")
    .addOption(jsonOpt())
    .action(async (id: string, o: { json?: boolean }) => {
      const res = await client().checkCluster(id);
      if (o.json) io.json(res);
      else
        io.out(
          table(
            ["NODE", "REACHABLE", "PINNED", "GPUS", "HOST KEY", "ERROR"],
            res.nodes.map((n) => [
              n.node,
              n.reachable ? "yes" : "no",
              n.pinnedNow ? "now" : n.pinned ? "yes" : "no",
              n.gpus,
              n.hostKeyFingerprint,
              n.hostKeyMismatch ? `HOST KEY MISMATCH${n.error ? `: ${n.error}` : ""}` : n.error,
            ]),
          ),
        );
      if (res.nodes.some((n) => !n.reachable || n.hostKeyMismatch)) result.code = EXIT.FAILED;
    });

  // ---- jobs ----
  program
    .command("submit")
    .description("Submit a job from YAML/JSON and follow it to its end (exit 0 only if it SUCCEEDED)")
    .requiredOption("-f, --file <path>", "job spec (YAML or JSON); files written '@path' are read from disk")
    .option("-d, --detach", "print the job id and return at once")
    .option("--name <name>", "override the spec's name")
    .option("--cluster <name>", "override the spec's cluster")
    .option("--idempotency-key <key>", "a repeat with the same key returns the first job")
    .addOption(jsonOpt())
    .action(
      async (o: { file: string; detach?: boolean; name?: string; cluster?: string; idempotencyKey?: string; json?: boolean }) => {
        const spec = loadJobSpec(o.file, { ...(o.name ? { name: o.name } : {}), ...(o.cluster ? { cluster: o.cluster } : {}) });
        const c = client();
        const ref = await c.submitJob(spec, o.idempotencyKey);
        if (o.detach) {
          if (o.json) io.json(ref);
          else io.out(ref.id);
          return;
        }
        io.err(`[trainyard] job ${ref.id} submitted (${ref.status}); Ctrl-C stops following, not the job`);
        const { code, job } = await followJob(c, io, ref.id, { json: o.json ?? false, signal: ctx.signal });
        if (code === EXIT.INTERRUPTED)
          io.err(`[trainyard] still running: 'trainyard logs -f ${ref.id}', 'trainyard cancel ${ref.id}'`);
        if (o.json && job) io.json(job);
        result.code = code;
      },
    );

  program
    .command("ps")
    .description("The team's jobs, newest first")
    .option("-w, --watch", "refresh every 2 s (NDJSON with --json)")
    .addOption(new Option("--status <status>", "only this status").choices([...JOB_STATUSES]))
    .option("--project <name>", "only this project")
    .option("--limit <n>", "at most this many (1-200)", int("--limit", 1), 50)
    .addOption(jsonOpt())
    .action(async (o: { watch?: boolean; status?: string; project?: string; limit: number; json?: boolean }) => {
      const c = client();
      for (;;) {
        const page = await c.listJobs({ status: o.status, project: o.project, limit: o.limit });
        if (o.json) io.json(page);
        else {
          if (o.watch && io.isTty) io.out("\x1b[2J\x1b[H");
          io.out(page.items.length ? jobRows(page.items) : "no jobs");
        }
        if (!o.watch) return;
        await sleep(2000, ctx.signal);
        if (ctx.signal.aborted) return;
      }
    });

  program
    .command("status <id>")
    .description("One job: status, progress, attempts and nodes, cost")
    .addOption(jsonOpt())
    .action(async (id: string, o: { json?: boolean }) => {
      const job = await client().getJob(id);
      if (o.json) io.json(job);
      else io.out(jobDetail(job));
    });

  program
    .command("logs <id>")
    .description("A node's log of the job's current (or last) attempt; -f follows it to the job's end")
    .option("-f, --follow", "follow until the job ends; exit with its outcome (NDJSON with --json)")
    .option("--node <name>", "the node (default: node rank 0)")
    .option("--rank <n>", "the node of this node rank", int("--rank"))
    .option("--tail <n>", "only the last n lines (before following)", int("--tail"))
    .option("--since <offset>", "start at this byte offset (the 'offset' of an NDJSON line resumes after it)", int("--since"))
    .addOption(jsonOpt())
    .action(
      async (
        id: string,
        o: { follow?: boolean; node?: string; rank?: number; tail?: number; since?: number; json?: boolean },
      ) => {
        if (o.node && o.rank !== undefined) throw new CliError("give --node or --rank, not both", EXIT.USAGE);
        const c = client();
        let node = o.node;
        if (o.rank !== undefined) node = nodeOfRank(await c.getJob(id), o.rank);
        let offset = o.since ?? 0;
        if (!o.follow || o.tail !== undefined) {
          let text = "";
          let attempt = "";
          let nodeName = node ?? "";
          for (;;) {
            const chunk = await c.logChunk(id, { ...(node ? { node } : {}), from: offset, maxBytes: 1024 * 1024 });
            attempt = chunk.attempt;
            nodeName = chunk.node;
            if (!chunk.text) break;
            text += chunk.text;
            offset = chunk.nextOffset;
          }
          if (o.tail !== undefined) text = lastLines(text, o.tail);
          if (!o.follow) {
            if (o.json)
              io.json({
                job: id,
                node: nodeName,
                attempt,
                nextOffset: offset,
                lines: text.split("\n").filter((l, i, a) => l !== "" || i < a.length - 1),
              });
            else if (text) io.out(text.endsWith("\n") ? text.slice(0, -1) : text);
            return;
          }
          if (o.json) {
            let at = offset - Buffer.byteLength(text);
            for (const line of text.split("\n").slice(0, text.endsWith("\n") ? -1 : undefined)) {
              at += Buffer.byteLength(line) + 1;
              io.json({ type: "log", job: id, node: nodeName, attempt, line, offset: Math.min(at, offset) });
            }
          } else if (text) io.out(text.endsWith("\n") ? text.slice(0, -1) : text);
          node = nodeName;
        }
        result.code = await followLog(c, io, id, {
          ...(node ? { node } : {}),
          from: offset,
          json: o.json ?? false,
          signal: ctx.signal,
        });
      },
    );

  program
    .command("cancel <id>")
    .description("Cancel a job: every rank is stopped; --wait until it has ended")
    .option("--wait", "wait until the job is terminal")
    .addOption(jsonOpt())
    .action(async (id: string, o: { wait?: boolean; json?: boolean }) => {
      const c = client();
      let job = await c.cancelJob(id);
      while (o.wait && !TERMINAL_STATUSES.has(job.status) && !ctx.signal.aborted) {
        await sleep(1000, ctx.signal);
        job = await c.getJob(id);
      }
      if (o.json) io.json(job);
      else io.err(`job ${id}: ${job.status}${TERMINAL_STATUSES.has(job.status) ? "" : " (stopping)"}`);
    });

  program
    .command("checkpoints <id>")
    .description("The job's checkpoints, newest first")
    .addOption(jsonOpt())
    .action(async (id: string, o: { json?: boolean }) => {
      const { items } = await client().checkpoints(id);
      if (o.json) io.json({ items });
      else
        io.out(
          items.length
            ? table(
                ["ID", "STEP", "ATTEMPT", "NODE", "STATE", "PATH", "AGE"],
                items.map((x) => [x.id, x.step, x.attemptNumber, x.node, x.state, x.uri ?? x.path, age(x.createdAt)]),
              )
            : "no checkpoints",
        );
    });

  // ---- money ----
  program
    .command("costs")
    .description("Spend of your key's team: by project (default), by job, or the team's total")
    .addOption(new Option("--by <group>", "group by").choices(["team", "project", "job"]))
    .option("--team [name]", "the team's total (groupBy team); a name must be your key's team")
    .option("--project <name>", "only this project")
    .option("--month <YYYY-MM>", "a calendar month (UTC); default: this month so far")
    .addOption(jsonOpt())
    .action(async (o: { by?: string; team?: string | boolean; project?: string; month?: string; json?: boolean }) => {
      const c = client();
      let range: { from?: string; to?: string } = {};
      if (o.month) {
        try {
          range = monthRange(o.month);
        } catch (err) {
          throw new CliError(`--month: ${(err as Error).message}`, EXIT.USAGE);
        }
        if (Date.parse(range.to!) > Date.now()) range.to = new Date().toISOString();
      }
      if (typeof o.team === "string") {
        const me = await c.me();
        if (me.team !== o.team)
          throw new CliError(
            `costs are scoped to the key's team ('${me.team}'); use a context with a key of team '${o.team}'`,
            EXIT.USAGE,
          );
      }
      const groupBy = o.by ?? (o.team !== undefined ? "team" : "project");
      const report = await c.costs({ groupBy, project: o.project, ...range });
      if (o.json) io.json(report);
      else {
        io.out(
          table(
            [groupBy.toUpperCase(), ...(groupBy === "job" ? ["NAME", "STATUS"] : []), "USD", "GPU-HOURS", "JOBS"],
            report.items.map((i) => [
              i.key,
              ...(groupBy === "job" ? [i.job?.name, i.job?.status] : []),
              usd(i.usd),
              i.gpuHours.toFixed(4),
              i.jobs,
            ]),
          ),
        );
        io.out(`total ${usd(report.totalUsd)}, ${report.totalGpuHours.toFixed(4)} GPU-hours, ${report.from} .. ${report.to}`);
      }
    });

  program
    .command("budgets")
    .description("The team's budgets and their spend this period")
    .addOption(jsonOpt())
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().budgets();
      if (o.json) io.json({ items });
      else
        io.out(
          items.length
            ? table(
                ["ID", "NAME", "SCOPE", "LIMIT", "SPENT", "USED", "ACTION", "PERIOD"],
                items.map((b) => [
                  b.id,
                  b.name,
                  b.scope.type === "team"
                    ? "team"
                    : b.scope.type === "project"
                      ? `project ${b.scope.project}`
                      : `job ${b.scope.jobId}`,
                  usd(b.limitUsd),
                  usd(b.current?.spendUsd),
                  b.current ? `${Math.round(b.current.usedRatio * 100)}%${b.current.exhausted ? " EXHAUSTED" : ""}` : "-",
                  b.action,
                  b.current?.period ?? b.period,
                ]),
              )
            : "no budgets",
        );
    });

  // ---- teams and keys ----
  const teamOf = async (c: ApiClient, team?: string) => team ?? (await c.me()).team;
  const keyRows = (items: ApiKeyView[]) =>
    table(
      ["ID", "NAME", "ROLE", "PREFIX", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
      items.map((k) => [k.id, k.name, k.role, k.prefix, k.createdAt, k.expiresAt, k.lastUsedAt, k.revokedAt]),
    );
  const keys = program.command("keys").description("API keys of a team (default: your key's team); never their secrets");
  keys
    .command("ls", { isDefault: true })
    .description("List keys (default)")
    .option("--team <name>", "the team (operators: any team)")
    .addOption(jsonOpt())
    .action(async (o: { team?: string; json?: boolean }) => {
      const c = client();
      const { items } = await c.listKeys(await teamOf(c, o.team));
      if (o.json) io.json({ items });
      else io.out(items.length ? keyRows(items) : "no keys");
    });
  keys
    .command("create")
    .description("Issue a key; the key itself is printed once, on stdout")
    .requiredOption("--name <name>", "a name for the key")
    .addOption(new Option("--role <role>", "its role").choices([...ROLES]).makeOptionMandatory())
    .option("--team <name>", "the team (default: your key's team)")
    .option("--expires-days <days>", "days until it expires", (v) => {
      const n = Number(v);
      if (!(n > 0)) throw new InvalidArgumentError("must be a positive number of days");
      return n;
    })
    .addOption(jsonOpt())
    .action(async (o: { name: string; role: Role; team?: string; expiresDays?: number; json?: boolean }) => {
      const c = client();
      const team = await teamOf(c, o.team);
      const k = await c.issueKey(team, {
        name: o.name,
        role: o.role,
        ...(o.expiresDays ? { expiresInDays: o.expiresDays } : {}),
      });
      if (o.json) io.json(k);
      else {
        io.err(`key '${k.name}' (${k.id}, role ${k.role}) issued for team ${k.team}; it is shown only now:`);
        io.out(k.key);
      }
    });
  keys
    .command("revoke <keyId>")
    .description("Revoke a key: it answers 401 from then on")
    .option("--team <name>", "the team (default: your key's team)")
    .action(async (keyId: string, o: { team?: string }) => {
      const c = client();
      const team = await teamOf(c, o.team);
      await c.revokeKey(team, keyId);
      io.err(`key ${keyId} of team ${team} revoked`);
    });

  const teams = program.command("teams").description("Teams (platform operators)");
  teams
    .command("ls")
    .description("Every team")
    .addOption(jsonOpt())
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().listTeams();
      if (o.json) io.json({ items });
      else
        io.out(
          table(
            ["NAME", "MAX GPUS", "MAX JOBS", "CREATED"],
            items.map((t) => [t.name, t.quota.maxGpus, t.quota.maxJobs, t.createdAt]),
          ),
        );
    });
  teams
    .command("create <name>")
    .description("Create a team; then give it an admin key with 'trainyard keys create --team <name> --role admin'")
    .option("--max-gpus <n>", "GPUs its jobs may hold at once", int("--max-gpus", 1))
    .option("--max-jobs <n>", "jobs it may run at once", int("--max-jobs", 1))
    .addOption(jsonOpt())
    .action(async (name: string, o: { maxGpus?: number; maxJobs?: number; json?: boolean }) => {
      const t = await client().createTeam({
        name,
        quota: { ...(o.maxGpus ? { maxGpus: o.maxGpus } : {}), ...(o.maxJobs ? { maxJobs: o.maxJobs } : {}) },
      });
      if (o.json) io.json(t);
      else io.err(`team '${t.name}' created`);
    });

  // ---- the platform on this machine ----
  const platform = program
    .command("platform")
    .description("Run the whole platform on this machine without Docker: Redis, FerretDB, sshd nodes, the five services");
  const dirOpt = () => new Option("--dir <path>", "state, logs and secrets of this platform").default(defaultPlatformDir(env));
  const up = platform
    .command("up")
    .description("Start Redis, the database, the test nodes and every service replica, kept running in the background")
    .addOption(dirOpt())
    .option("--port <port>", "the API's port (replicas take the next ones)", int("--port", 1), 8080)
    .option("--host <addr>", "the API's listen address", "127.0.0.1")
    .option("--no-infra", "do not run scripts/infra/up.sh (use REDIS_URL/MONGO_URL or an infra.json already there)")
    .option(
      "--infra-dir <path>",
      "where scripts/infra/up.sh keeps its state",
      env.TRAINYARD_INFRA_DIR ?? "/var/tmp/trainyard-infra",
    )
    .option("--db <name>", "the database name (kept for later runs; default trainyard)")
    .option("--queue-prefix <prefix>", "the Redis key prefix of the queues (kept; default trainyard)")
    .option("--login <context>", "save the operator key as this context", "local")
    .option("--no-login", "do not save a context")
    .option("--timeout <seconds>", "how long to wait for every replica to be ready", int("--timeout", 1), 120)
    .addOption(jsonOpt());
  for (const svc of SERVICES)
    up.option(`--${svc} <n>`, `replicas of ${svc} (default ${DEFAULT_REPLICAS[svc]})`, int(`--${svc}`, svc === "api" ? 1 : 0));
  up.action(async (o: Record<string, unknown>) => {
    const dir = String(o.dir);
    const res = await platformUp(io, {
      dir,
      replicas: Object.fromEntries(SERVICES.filter((s) => o[s] !== undefined).map((s) => [s, o[s] as number])),
      port: o.port as number,
      host: o.host as string,
      infra: o.infra !== false,
      infraDir: o.infraDir as string,
      ...(o.db ? { db: o.db as string } : {}),
      ...(o.queuePrefix ? { queuePrefix: o.queuePrefix as string } : {}),
      timeoutMs: (o.timeout as number) * 1000,
    });
    let context: string | undefined;
    if (o.login !== false) {
      context = String(o.login);
      writeConfig(cfgPath(), setContext(config(), context, { url: res.url, token: res.token }));
    }
    if (o.json) io.json({ ...res.status, ...(context ? { context } : {}) });
    else {
      io.out(statusText(res.status));
      io.err(
        [
          `[platform] up: API ${res.url}`,
          context
            ? `[platform] context '${context}' holds the operator key (bootstrap token, in ${dir}/platform.env) and is current`
            : `[platform] the operator key is API_ADMIN_TOKEN in ${dir}/platform.env`,
          "[platform] 'trainyard platform status' shows it; 'trainyard platform down' stops it",
        ].join("\n"),
      );
    }
  });
  platform
    .command("status")
    .description("Each replica: pid, state, readiness, restarts, log file (exit 1 if one is not ready, 3 if not running)")
    .addOption(dirOpt())
    .addOption(jsonOpt())
    .action(async (o: { dir: string; json?: boolean }) => {
      const s = await platformStatus(o.dir);
      if (o.json) io.json(s);
      else io.out(statusText(s));
      result.code = !s.running ? EXIT.REFUSED : s.services.every((r) => r.ready) ? EXIT.OK : EXIT.FAILED;
    });
  for (const verb of ["down", "stop"]) {
    platform
      .command(verb)
      .description(verb === "down" ? "Stop every service (Redis, FerretDB and the nodes stay up)" : "Same as down")
      .addOption(dirOpt())
      .action(async (o: { dir: string }) => {
        await platformDown(io, o.dir);
      });
  }

  program
    .command("completion")
    .description('Print a shell completion script: eval "$(trainyard completion bash)"')
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell === "bash") io.out(bashCompletion(program));
      else if (shell === "zsh") io.out(zshCompletion(program));
      else throw new CliError(`shell must be bash or zsh (got '${shell}')`, EXIT.USAGE);
    });

  return { program, result };
}

/** The node with node rank `rank` in the job's current attempt, or its last one. */
export function nodeOfRank(job: JobView, rank: number): string {
  const attempt = job.attempts[job.attempts.length - 1];
  if (!attempt) throw new CliError(`job ${job.id} has no attempt yet, so no node rank ${rank}`, EXIT.NOT_FOUND);
  const node = attempt.nodes.find((n) => n.nodeRank === rank);
  if (!node)
    throw new CliError(
      `attempt ${attempt.number} of job ${job.id} has no node rank ${rank} (0..${attempt.nodes.length - 1})`,
      EXIT.USAGE,
    );
  return node.name;
}

export type { CliConfig };
