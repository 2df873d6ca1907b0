import type { JobDoc } from "@trainyard/db";
import { jobDir } from "@trainyard/frameworks";

/** The job's checkpoint directory on a node (TRAINYARD_CHECKPOINT_DIR). Its own module: retention and object-store copies both need it. */
export function checkpointDirFor(job: JobDoc, workRoot: string): string {
  return job.spec.checkpoints?.dir ?? `${jobDir(workRoot, job._id.toString())}/checkpoints`;
}
