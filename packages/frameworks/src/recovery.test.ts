import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { retryPolicySchema } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import {
  announcementsCommand,
  decideRetry,
  isManagedCheckpointPath,
  parseCheckpointAnnouncements,
  parseStatPaths,
  removePathCommand,
  retryDelayMs,
  scanCheckpointsCommand,
  statPathsCommand,
} from "./recovery";

const policy = retryPolicySchema.parse({ maxRetries: 2, fatalExitCodes: [3] });
const run = (cmd: string) => execFileSync("/bin/sh", ["-c", cmd], { encoding: "utf8" });

describe("decideRetry", () => {
  it("retries a lost node, a stall, and a plain failure while retries are left", () => {
    expect(decideRetry(policy, { lost: true, logTail: "" }, 1).retry).toBe(true);
    expect(decideRetry(policy, { lost: false, stalled: true, logTail: "" }, 1).retry).toBe(true);
    expect(decideRetry(policy, { lost: false, exitCode: 1, logTail: "killed" }, 2).retry).toBe(true);
  });

  it("honours maxRetries", () => {
    const d = decideRetry(policy, { lost: true, logTail: "" }, 3);
    expect(d).toEqual({ retry: false, why: "retries exhausted (2 of 2 used)" });
    expect(decideRetry(retryPolicySchema.parse({}), { lost: false, exitCode: 1, logTail: "" }, 1)).toEqual({
      retry: false,
      why: "retries are off (maxRetries 0)",
    });
  });

  it("fails at once on a fatal pattern or exit code, unless a retryable pattern matches", () => {
    expect(decideRetry(policy, { lost: false, exitCode: 1, logTail: "  File x\nSyntaxError: invalid syntax" }, 1)).toEqual({
      retry: false,
      why: "log matches fatal pattern /SyntaxError/",
    });
    expect(decideRetry(policy, { lost: false, exitCode: 3, logTail: "" }, 1)).toEqual({
      retry: false,
      why: "exit code 3 is fatal",
    });
    expect(
      decideRetry(
        policy,
        { lost: false, exitCode: 3, logTail: "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1269, unhandled system error" },
        1,
      ).retry,
    ).toBe(true);
  });

  // Real lines from torch/NCCL: transient machine or network faults retry, whatever the exit code.
  it.each([
    "RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1269, unhandled system error, NCCL version 2.14.3",
    "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited or there was a network error, NCCL version 2.19.3",
    "ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.",
    "ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.",
    "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=812, OpType=ALLREDUCE) ran for 600035 milliseconds before timing out.",
    "NCCL communicator was aborted on rank 5.",
    "gpu-a:1234:1288 [0] NCCL WARN NET/IB : Got completion from peer 10.0.0.12<48329> with error 12, opcode 0, len 0, vendor err 129",
    "gpu-b:88:90 [1] NCCL WARN Net : Connection closed by remote peer 10.0.0.11<51514>",
  ])("retries on %s", (line) => {
    expect(decideRetry(policy, { lost: false, exitCode: 3, logTail: `step 9\n${line}\n` }, 1).retry).toBe(true);
  });

  it("does not take NCCL_DEBUG=INFO chatter or NCCL usage errors for a transient fault", () => {
    const info = [
      "gpu-a:1234:1234 [0] NCCL INFO Bootstrap : Using eth0:10.0.0.11<0>",
      "gpu-a:1234:1234 [0] NCCL INFO NET/Plugin : No plugin found (libnccl-net.so)",
      "gpu-a:1234:1290 [0] NCCL INFO comm 0x55d0 rank 0 nranks 4 cudaDev 0 busId 1000 - Init COMPLETE",
    ].join("\n");
    const bug = `${info}\nValueError: shapes (3,) and (4,) not aligned`;
    expect(decideRetry(policy, { lost: false, exitCode: 3, logTail: bug }, 1)).toEqual({
      retry: false,
      why: "exit code 3 is fatal",
    });
    const usage = `${info}\nRuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1191, invalid usage, NCCL version 2.14.3\nncclInvalidUsage: This usually reflects invalid usage of NCCL library.`;
    expect(decideRetry(policy, { lost: false, exitCode: 3, logTail: usage }, 1).retry).toBe(false);
  });
});

// A healthy 2-node NCCL job run with NCCL_DEBUG=INFO (NCCL 2.18–2.21 wording): every line says
// "NCCL", some say "error", "Connection" or "NET/IB"; none is a fault.
const NCCL_INFO_RUN = `gpu-a:2201:2201 [0] NCCL INFO Bootstrap : Using ens5:10.0.0.11<0>
gpu-a:2201:2201 [0] NCCL INFO NET/Plugin : dlerror=libnccl-net.so: cannot open shared object file: No such file or directory No plugin found (libnccl-net.so), using internal implementation
gpu-a:2201:2201 [0] NCCL INFO cudaDriverVersion 12040
NCCL version 2.20.5+cuda12.4
gpu-a:2201:2245 [0] NCCL INFO NCCL_SOCKET_IFNAME set by environment to ens5
gpu-a:2201:2245 [0] NCCL INFO NCCL_IB_DISABLE set by environment to 0.
gpu-a:2201:2245 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB ens5:10.0.0.11<0>
gpu-a:2201:2245 [0] NCCL INFO Using non-device net plugin version 0
gpu-a:2201:2245 [0] NCCL INFO Using network IB
gpu-a:2201:2245 [0] NCCL INFO Call to connect returned Connection refused, retrying
gpu-a:2201:2245 [0] NCCL INFO comm 0x5581e9a0 rank 0 nranks 2 cudaDev 0 nvmlDev 0 busId 18000 commId 0x3f1c52f0a1b2c3d4 - Init START
gpu-a:2201:2245 [0] NCCL INFO Setting affinity for GPU 0 to ffff,ffffffff
gpu-a:2201:2245 [0] NCCL INFO Channel 00/02 :    0   1
gpu-a:2201:2245 [0] NCCL INFO Channel 00/0 : 1[0] -> 0[0] [receive] via NET/IB/0/GDRDMA
gpu-a:2201:2245 [0] NCCL INFO Connected all rings
gpu-a:2201:2245 [0] NCCL INFO Connected all trees
gpu-a:2201:2245 [0] NCCL INFO threadThresholds 8/8/64 | 16/8/64 | 512 | 512
gpu-a:2201:2245 [0] NCCL INFO comm 0x5581e9a0 rank 0 nranks 2 cudaDev 0 nvmlDev 0 busId 18000 commId 0x3f1c52f0a1b2c3d4 - Init COMPLETE
gpu-a:2201:2290 [0] NCCL INFO [Service thread] Connection closed by localRank 0
gpu-a:2201:2201 [0] NCCL INFO comm 0x5581e9a0 rank 0 nranks 2 cudaDev 0 busId 18000 - Abort COMPLETE`;

describe("default classification of NCCL lines", () => {
  const defaults = retryPolicySchema.parse({ maxRetries: 3 });

  it("NCCL_DEBUG=INFO output of a healthy run matches no retryable pattern", () => {
    for (const line of NCCL_INFO_RUN.split("\n")) {
      const hit = defaults.retryableLogPatterns.find((p) => new RegExp(p).test(line));
      expect(hit, line).toBeUndefined();
    }
  });

  it("a real bug after that chatter fails instead of retrying", () => {
    const tail = `${NCCL_INFO_RUN}\nTraceback (most recent call last):\n  File "train.py", line 41, in <module>\nModuleNotFoundError: No module named 'datasets'`;
    expect(decideRetry(defaults, { lost: false, exitCode: 1, logTail: tail }, 1)).toEqual({
      retry: false,
      why: "log matches fatal pattern /ModuleNotFoundError/",
    });
  });

  it("a real NCCL fault after that chatter retries", () => {
    const tail = `${NCCL_INFO_RUN}\ngpu-a:2201:2290 [0] NCCL WARN NET/IB : Got completion from peer 10.0.0.12<40121> with error 12, opcode 1, len 0, vendor err 129 (Recv)\nRuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5\nncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.`;
    const d = decideRetry(defaults, { lost: false, exitCode: 1, logTail: tail }, 1);
    expect(d.retry).toBe(true);
  });

  it("ncclInternalError and an unhandled cuda error retry; invalid usage and invalid argument do not", () => {
    const retried = (line: string) => decideRetry(defaults, { lost: false, exitCode: 1, logTail: line }, 1).why;
    expect(retried("ncclInternalError: Internal check failed.")).toMatch(/retryable pattern/);
    expect(retried("RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1296, unhandled cuda error, NCCL version 2.14.3")).toMatch(
      /retryable pattern/,
    );
    expect(retried("RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1191, invalid usage, NCCL version 2.14.3")).toBe(
      "failure is retryable",
    );
    expect(
      decideRetry(
        retryPolicySchema.parse({ maxRetries: 3, fatalExitCodes: [1] }),
        { lost: false, exitCode: 1, logTail: "ncclInvalidArgument: Invalid value for an argument." },
        1,
      ).retry,
    ).toBe(false);
  });
});

describe("retryDelayMs", () => {
  it("doubles per failed attempt and is capped", () => {
    const p = retryPolicySchema.parse({ maxRetries: 9, backoffSeconds: 2, maxBackoffSeconds: 10 });
    expect([1, 2, 3, 4].map((n) => retryDelayMs(p, n))).toEqual([2000, 4000, 8000, 10000]);
  });
});

describe("checkpoint announcements", () => {
  it("parses announcement lines with their numeric metrics and skips everything else", () => {
    const lines = [
      '{"step":5,"total_steps":40,"loss":0.5}',
      '{"checkpoint":"/ck/step-5","step":5,"loss":0.5,"val.acc":0.9,"note":"x"}',
      "not json",
      '{"checkpoint":"/ck/step-10"}',
    ];
    expect(parseCheckpointAnnouncements(lines)).toEqual([
      { path: "/ck/step-5", step: 5, metrics: { loss: 0.5, "val.acc": 0.9 } },
    ]);
  });

  it("manages only paths inside the job's checkpoint directory", () => {
    expect(isManagedCheckpointPath("/w/jobs/j/checkpoints/step-5", "/w/jobs/j/checkpoints")).toBe(true);
    expect(isManagedCheckpointPath("/w/jobs/j/checkpoints", "/w/jobs/j/checkpoints/")).toBe(false);
    expect(isManagedCheckpointPath("/", "/w/jobs/j/checkpoints")).toBe(false);
    expect(isManagedCheckpointPath("/w/jobs/j/checkpoints/../../x", "/w/jobs/j/checkpoints")).toBe(false);
    expect(isManagedCheckpointPath("/w/jobs/j/checkpoints-evil/x", "/w/jobs/j/checkpoints")).toBe(false);
  });

  it("reads announcements, sizes and removes checkpoints with real shell commands", () => {
    const dir = mkdtempSync(join(tmpdir(), "ty-ck-"));
    const ck = join(dir, "step 5 $(touch canary)");
    mkdirSync(ck);
    writeFileSync(join(ck, "model.pt"), Buffer.alloc(1000));
    const metrics = join(dir, "metrics.jsonl");
    writeFileSync(metrics, `{"step":1}\n${JSON.stringify({ checkpoint: ck, step: 5 })}\n{"step":6}\n`);
    expect(parseCheckpointAnnouncements(run(announcementsCommand(metrics, 10)).split("\n"))).toEqual([
      { path: ck, step: 5, metrics: {} },
    ]);
    const sizes = parseStatPaths(run(statPathsCommand([ck, join(dir, "missing")])));
    expect(sizes.get(ck)).toBeGreaterThanOrEqual(1000);
    expect(sizes.has(join(dir, "missing"))).toBe(false);
    run(removePathCommand(ck));
    expect(parseStatPaths(run(statPathsCommand([ck]))).size).toBe(0);
    expect(run(`ls ${JSON.stringify(dir)}`)).not.toContain("canary");
  });
});

describe("scanCheckpointsCommand (fallback for scripts that don't announce)", () => {
  it("lists the entries of the checkpoint directory that match the pattern", () => {
    const dir = mkdtempSync(join(tmpdir(), "ty-scan-"));
    for (const d of ["step-5", "step-10", "other"]) mkdirSync(join(dir, d));
    const found = run(scanCheckpointsCommand(dir, "step-*"))
      .split("\n")
      .filter(Boolean)
      .map((l) => l.slice(l.indexOf("\t") + 1))
      .sort();
    expect(found).toEqual([join(dir, "step-10"), join(dir, "step-5")]);
    expect(run(scanCheckpointsCommand(join(dir, "missing"), "step-*"))).toBe("");
    expect(() => scanCheckpointsCommand(dir, "$(id)")).toThrow(/unsafe scan pattern/);
  });
});
