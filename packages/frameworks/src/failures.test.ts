import { type JobSpecInput, jobSpecSchema } from "@trainyard/common";
import { describe, expect, it } from "vitest";
import {
  attemptSucceeded,
  findAttemptFailure,
  launcherFirstFailure,
  type ObservedNode,
  settleNodeStates,
  toleratedNodes,
} from "./failures";

const spec = (over: Partial<JobSpecInput>) =>
  jobSpecSchema.parse({
    name: "j",
    framework: "pytorch",
    cluster: "c",
    resources: { nodes: 2, gpusPerNode: 2 },
    command: ["x"],
    ...over,
  });
const node = (nodeRank: number, over: Partial<ObservedNode> = {}): ObservedNode => ({
  name: `n${nodeRank + 1}`,
  nodeRank,
  state: "running",
  ...over,
});

const MPIRUN_TAIL = `--------------------------------------------------------------------------
mpirun detected that one or more processes exited with non-zero status, thus causing
the job to be terminated. The first process to do so was:

  Process name: [[15909,1],3]
  Exit code:    7
--------------------------------------------------------------------------
`;
const HOROVODRUN_TAIL = `RuntimeError: Horovod detected that one or more processes exited with non-zero status, thus causing the job to be terminated. The first process to do so was:
Process name: 2
Exit code: 9
`;

describe("launcher summaries", () => {
  it("reads mpirun's and horovodrun's first failed process", () => {
    expect(launcherFirstFailure(MPIRUN_TAIL)).toEqual({ rank: 3, exitCode: 7 });
    expect(launcherFirstFailure(HOROVODRUN_TAIL)).toEqual({ rank: 2, exitCode: 9 });
    expect(launcherFirstFailure("Process name: 10.0.0.12[1]\nExit code: 3")).toEqual({ host: "10.0.0.12", exitCode: 3 });
    expect(launcherFirstFailure("all good")).toBeUndefined();
  });
});

describe("horovod/mpi: nodes follow the head's launcher", () => {
  const h = spec({ framework: "horovod", horovod: { launcher: "mpirun" } });
  it("settles reachable followers to running, then to the head's exit", () => {
    const lost = node(1, { state: "lost" });
    expect(settleNodeStates(h, [node(0), lost], [true, true]).map((n) => n.state)).toEqual(["running", "running"]);
    expect(settleNodeStates(h, [node(0), lost], [true, false])[1]!.state).toBe("lost");
    const done = settleNodeStates(h, [node(0, { state: "exited", exitCode: 0 }), node(1)], [true, true]);
    expect(done.map((n) => [n.state, n.exitCode])).toEqual([
      ["exited", 0],
      ["exited", 0],
    ]);
    expect(attemptSucceeded(h, done)).toBe(true);
    // Other frameworks: untouched.
    expect(settleNodeStates(spec({}), [node(0), lost], [true, true])[1]!.state).toBe("lost");
  });

  it("blames the node of the first failed rank, with the launcher's exit code", () => {
    const f = findAttemptFailure(h, [
      node(0, { state: "exited", exitCode: 7, logTail: MPIRUN_TAIL }),
      node(1, { state: "exited", exitCode: 7 }),
    ]);
    expect(f).toEqual({ node: "n2", rank: 3, exitCode: 7, reason: "node n2 rank 3 exited with code 7 (mpirun exited 7)" });
    const g = findAttemptFailure(spec({ framework: "horovod" }), [
      node(0, { state: "exited", exitCode: 1, logTail: "boom" }),
      node(1),
    ]);
    expect(g).toEqual({ node: "n1", exitCode: 1, reason: "horovodrun on node n1 exited with code 1" });
  });

  it("blames an unreachable node when the launcher died without naming a rank", () => {
    const f = findAttemptFailure(h, [
      node(0, { state: "exited", exitCode: 255, logTail: "ORTE was unable to reliably start one or more daemons." }),
      node(1, { state: "unreachable", error: "connection refused" }),
    ]);
    expect(f).toEqual({
      node: "n2",
      exitCode: 255,
      lost: true,
      reason: "node n2 unreachable: connection refused (mpirun on node n1 exited with code 255)",
    });
  });

  it("a lost node fails a fixed-size job", () => {
    expect(findAttemptFailure(h, [node(0), node(1, { state: "lost", error: "connect ECONNREFUSED" })])).toMatchObject({
      node: "n2",
      lost: true,
      reason: "node n2 lost: connect ECONNREFUSED",
    });
  });
});

describe("elastic jobs go on without nodes they can spare", () => {
  it("Horovod Elastic: a lost non-head node is tolerated while minNp slots remain", () => {
    const e = spec({ framework: "horovod", horovod: { elastic: { minNp: 2, maxNp: 4 } } });
    const nodes = [node(0), node(1, { state: "lost" })];
    expect(toleratedNodes(e, nodes)).toEqual(["n2"]);
    expect(findAttemptFailure(e, nodes)).toBeUndefined();
    expect(attemptSucceeded(e, [node(0, { state: "exited", exitCode: 0 }), node(1, { state: "lost" })])).toBe(true);
    const tight = spec({ framework: "horovod", horovod: { elastic: { minNp: 3, maxNp: 4 } } });
    expect(findAttemptFailure(tight, nodes)).toMatchObject({ node: "n2", lost: true });
    // The head hosts the launcher: losing it is never tolerated.
    expect(findAttemptFailure(e, [node(0, { state: "lost" }), node(1)])).toMatchObject({ node: "n1", lost: true });
  });

  it("PyTorch c10d elastic: ignores worker restarts, tolerates a node while minNodes remain", () => {
    const e = spec({ resources: { nodes: 2, gpusPerNode: 2, minNodes: 1, maxNodes: 2 }, pytorch: { rendezvous: "c10d" } });
    const restart = "[E api.py:1] failed (exitcode: 1) local_rank: 0 (pid: 9) of binary: python3";
    expect(findAttemptFailure(e, [node(0, { logTail: restart }), node(1)])).toBeUndefined();
    expect(findAttemptFailure(e, [node(0), node(1, { state: "exited", exitCode: 1 })])).toBeUndefined();
    expect(findAttemptFailure(e, [node(0, { state: "exited", exitCode: 1 }), node(1)])).toMatchObject({
      node: "n1",
      exitCode: 1,
    });
    expect(attemptSucceeded(e, [node(0, { state: "exited", exitCode: 0 }), node(1, { state: "lost" })])).toBe(true);
  });
});

describe("tensorflow", () => {
  it("a worker's non-zero exit fails the gang, naming its task", () => {
    const t = spec({ framework: "tensorflow" });
    expect(findAttemptFailure(t, [node(0), node(1, { state: "exited", exitCode: 3 })])).toEqual({
      node: "n2",
      rank: 1,
      exitCode: 3,
      reason: "node n2 (task 1) exited with code 3",
    });
    expect(attemptSucceeded(t, [node(0, { state: "exited", exitCode: 0 }), node(1, { state: "exited", exitCode: 0 })])).toBe(
      true,
    );
    expect(attemptSucceeded(t, [node(0, { state: "exited", exitCode: 0 }), node(1)])).toBe(false);
  });
});

describe("elastic: a lost node stays lost for the attempt", () => {
  it("keeps a node the job let go out, even when it answers again", () => {
    const e = spec({ framework: "horovod", horovod: { elastic: { minNp: 2, maxNp: 4 } } });
    const again = settleNodeStates(e, [node(0), node(1, { state: "lost" })], [true, true], ["running", "lost"]);
    expect(again.map((n) => n.state)).toEqual(["running", "lost"]);
    const fixed = spec({ framework: "horovod" });
    expect(settleNodeStates(fixed, [node(0), node(1, { state: "lost" })], [true, true], ["running", "lost"])[1]!.state).toBe(
      "running",
    );
  });
});
