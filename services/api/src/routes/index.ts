import type { ApiDeps } from "../context";
import type { ApiRoute } from "../http/route-table";
import { accessRoutes } from "./access";
import { alertingRoutes } from "./alerting";
import { clusterRoutes } from "./clusters";
import { jobRoutes } from "./jobs";
import { moneyRoutes } from "./money";
import { storageRoutes } from "./storage";

/** Every operation of the API: what is mounted, documented (OpenAPI) and tested for isolation. */
export function apiRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    ...accessRoutes(deps),
    ...clusterRoutes(deps),
    ...jobRoutes(deps),
    ...storageRoutes(deps),
    ...moneyRoutes(deps),
    ...alertingRoutes(deps),
  ];
}
