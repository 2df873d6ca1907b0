import { createContext } from "preact";
import { useContext } from "preact/hooks";

/** Who the key is (GET /v1/me): its team and role decide which buttons exist. */
export interface Me {
  keyId: string;
  keyName: string;
  team: string;
  role: string;
  quota?: { maxGpus?: number; maxJobs?: number };
}

export const MeContext = createContext<Me | undefined>(undefined);
/** Inside the logged-in shell, always set. */
export const useMe = (): Me => useContext(MeContext)!;
