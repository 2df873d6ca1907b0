import { describe, expect, it } from "vitest";
import { FRAMEWORKS, jobSpecSchema } from "./index";

const base = { name: "j", cluster: "c", resources: { nodes: 2, gpusPerNode: 2 }, command: ["python3", "train.py"] };
const messages = (body: Record<string, unknown>) => {
  const r = jobSpecSchema.safeParse({ ...base, ...body });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("job spec: frameworks and their options", () => {
  it("knows pytorch, horovod, tensorflow and command, and names them for anything else", () => {
    expect(FRAMEWORKS).toEqual(["pytorch", "horovod", "tensorflow", "command"]);
    expect(messages({ framework: "jax" })).toEqual([
      'framework: unknown framework "jax"; supported: pytorch, horovod, tensorflow, command',
    ]);
  });

  it("horovod: launcher defaults to horovodrun; unknown launchers are named", () => {
    const j = jobSpecSchema.parse({ ...base, framework: "horovod", horovod: {} });
    expect(j.horovod).toEqual({ launcher: "horovodrun" });
    expect(messages({ framework: "horovod", horovod: { launcher: "srun" } })).toEqual([
      "horovod.launcher: must be horovodrun or mpirun",
    ]);
  });

  it("tensorflow: chief defaults to false", () => {
    expect(jobSpecSchema.parse({ ...base, framework: "tensorflow", tensorflow: {} }).tensorflow).toEqual({ chief: false });
  });

  it("refuses options of another framework", () => {
    expect(messages({ framework: "pytorch", horovod: {} })).toEqual([
      'horovod: horovod options are only for framework "horovod" (this job is pytorch)',
    ]);
    expect(messages({ framework: "horovod", tensorflow: {} })).toEqual([
      'tensorflow: tensorflow options are only for framework "tensorflow" (this job is horovod)',
    ]);
    expect(messages({ framework: "tensorflow", pytorch: { rendezvous: "c10d" } })).toEqual([
      'pytorch: pytorch options are only for framework "pytorch" (this job is tensorflow)',
    ]);
  });

  it("elastic PyTorch needs c10d and min <= nodes <= max", () => {
    const elastic = { resources: { nodes: 2, gpusPerNode: 1, minNodes: 1, maxNodes: 3 } };
    expect(messages({ framework: "pytorch", ...elastic, pytorch: { rendezvous: "c10d" } })).toEqual([]);
    expect(messages({ framework: "pytorch", ...elastic })).toEqual([
      'pytorch.rendezvous: elastic jobs (resources.minNodes/maxNodes) need "rendezvous": "c10d"',
    ]);
    expect(
      messages({ framework: "pytorch", resources: { nodes: 2, gpusPerNode: 1, maxNodes: 1 }, pytorch: { rendezvous: "c10d" } }),
    ).toEqual(["resources: elastic bounds must satisfy minNodes <= nodes <= maxNodes (got 2 <= 2 <= 1)"]);
  });

  it("elastic bounds belong to PyTorch (nodes) and Horovod (processes) only", () => {
    expect(messages({ framework: "tensorflow", resources: { nodes: 2, gpusPerNode: 1, minNodes: 1 } })).toEqual([
      "resources: TensorFlow jobs are not elastic: remove resources.minNodes/maxNodes",
    ]);
    expect(messages({ framework: "horovod", resources: { nodes: 2, gpusPerNode: 1, minNodes: 1 } })).toEqual([
      "resources: Horovod Elastic bounds are processes: use horovod.elastic.minNp/maxNp, not resources.minNodes/maxNodes",
    ]);
  });

  it("Horovod Elastic: minNp <= nodes x gpusPerNode <= maxNp, under horovodrun", () => {
    expect(messages({ framework: "horovod", horovod: { elastic: { minNp: 2, maxNp: 4 } } })).toEqual([]);
    expect(messages({ framework: "horovod", horovod: { elastic: { minNp: 5, maxNp: 8 } } })).toEqual([
      "horovod.elastic: elastic bounds must satisfy minNp <= nodes x gpusPerNode <= maxNp (got 5 <= 4 <= 8)",
    ]);
    expect(messages({ framework: "horovod", horovod: { launcher: "mpirun", elastic: { minNp: 2, maxNp: 4 } } })).toEqual([
      "horovod.launcher: Horovod Elastic runs under horovodrun, not mpirun",
    ]);
  });

  it("reserves the generated file names of Horovod attempts", () => {
    expect(messages({ framework: "horovod", files: { "ssh/config": "x", hostfile: "y" } })).toEqual([
      "files.ssh/config: 'ssh/config' is a reserved file name in the attempt directory",
      "files.hostfile: 'hostfile' is a reserved file name in the attempt directory",
    ]);
  });
});
