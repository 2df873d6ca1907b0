import { jobStatusSchema } from "@trainyard/common";
import { z } from "zod";

/** Response shapes for the OpenAPI document. Views are described by their stable core fields. */
export const errorBodySchema = z.object({
  error: z.object({ message: z.string(), details: z.unknown().optional() }),
});

/** An object whose listed fields are always present; other fields may be added. */
export const objectWith = <T extends z.ZodRawShape>(shape: T) => z.looseObject(shape);

export const itemsOf = (item: z.ZodType) => z.looseObject({ items: z.array(item) });
export const pageOf = (item: z.ZodType) =>
  z.looseObject({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });
/** A keyset page: `nextCursor` (absent on the last page) is passed back as `?cursor=`. */
export const cursorPageOf = (item: z.ZodType) =>
  z.looseObject({
    items: z.array(item),
    limit: z.number().int(),
    nextCursor: z.string().optional().describe("pass as `cursor` for the next page; absent on the last page"),
  });

export const idView = objectWith({ id: z.string() });
export const namedView = objectWith({ name: z.string() });
export const jobRefSchema = z.object({ id: z.string(), status: jobStatusSchema });
export const jobViewSchema = objectWith({ id: z.string(), team: z.string(), status: jobStatusSchema });
/** GET /v1/jobs/:id: a waiting job (QUEUED/RETRYING) also says where it stands and why. */
export const jobDetailSchema = objectWith({
  id: z.string(),
  team: z.string(),
  status: jobStatusSchema,
  queuePosition: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("1-based place in the cluster's queue (priority descending, then submit time); QUEUED/RETRYING only"),
  waitingReason: z.string().optional().describe("what a waiting job waits for: capacity, its team's quota, the jobs ahead of it"),
});
export const clusterViewSchema = objectWith({ id: z.string(), name: z.string(), team: z.string() });
