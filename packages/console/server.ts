import { fileURLToPath } from "node:url";

/** Where `pnpm --filter @trainyard/console build` writes the console's static files (index.html, assets/). */
export const CONSOLE_DIST_DIR = fileURLToPath(new URL("./dist", import.meta.url));

/** The path the API serves the console under. */
export const CONSOLE_PATH = "/ui";
