import type { JobSpec } from "@trainyard/common";
import { planCommand } from "./command";
import { horovodOptions, planHorovod } from "./horovod";
import type { LaunchPlan, PlanInput } from "./plan-types";
import { planPytorch, pytorchElastic } from "./pytorch";
import { planTensorflow } from "./tensorflow";

/** The launch plan of any job: the one dispatch by framework (launcher and dry-run both use it). */
export function planJob(input: PlanInput): LaunchPlan {
  switch (input.spec.framework) {
    case "pytorch":
      return planPytorch(input);
    case "horovod":
      return planHorovod(input);
    case "tensorflow":
      return planTensorflow(input);
    case "command":
      return planCommand(input);
    default:
      throw new Error(`no launch plan for framework '${String(input.spec.framework)}'`);
  }
}

/** How a framework's attempt behaves on the nodes; what the launcher and the monitor need to know. */
export interface FrameworkTraits {
  /** "all": Trainyard starts launch.sh on every node; "head": only on rank 0, which starts the other ranks over SSH. */
  launchOn: "all" | "head";
  /** A per-attempt SSH key between the nodes is provisioned before start and revoked at the end. */
  interNodeSsh: boolean;
  /**
   * Elastic jobs go on when nodes leave, as long as enough remain: `minNodes` nodes (PyTorch), or
   * `minSlots` processes (Horovod Elastic). Rank 0 hosts the rendezvous/launcher and must stay.
   */
  elastic?: { minNodes?: number; minSlots?: number };
  /** The monitor keeps the head node's hosts.current (Horovod Elastic discovery) to the healthy nodes. */
  hostDiscovery: boolean;
}

export function frameworkTraits(
  spec: Pick<JobSpec, "framework" | "resources"> & Partial<Pick<JobSpec, "horovod">>,
): FrameworkTraits {
  switch (spec.framework) {
    case "horovod": {
      const h = horovodOptions(spec);
      return {
        launchOn: "head",
        interNodeSsh: true,
        ...(h.elastic ? { elastic: { minSlots: h.elastic.minNp } } : {}),
        hostDiscovery: Boolean(h.elastic),
      };
    }
    case "pytorch": {
      const e = pytorchElastic(spec);
      return { launchOn: "all", interNodeSsh: false, ...(e ? { elastic: { minNodes: e.min } } : {}), hostDiscovery: false };
    }
    default:
      return { launchOn: "all", interNodeSsh: false, hostDiscovery: false };
  }
}
