import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { QueueBus } from "@trainyard/runtime";
import type { Router } from "express";

export const ADMIN_QUEUES_PATH = "/admin/queues";

/** bull-board over every queue of the catalog (mounted behind the admin token). */
export function queueDashboard(bus: QueueBus): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: bus.allQueues().map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: "Trainyard queues" } },
  });
  return serverAdapter.getRouter() as Router;
}
