#!/usr/bin/env node
/** The `trainyard` command: see docs/cli.md. */
import { CommanderError } from "commander";
import { buildProgram } from "./cli";
import { CliError, EXIT } from "./exit";
import { processIo } from "./io";

// `pnpm trainyard …` runs in the repository root; relative paths are the caller's.
if (process.env.npm_lifecycle_event === "trainyard" && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);

const ctl = new AbortController();
let interrupts = 0;
process.on("SIGINT", () => {
  if (++interrupts > 1) process.exit(EXIT.INTERRUPTED);
  ctl.abort();
});

const { program, result } = buildProgram({ io: processIo, env: process.env, signal: ctl.signal });
program.exitOverride();

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return ctl.signal.aborted && result.code === EXIT.OK ? EXIT.INTERRUPTED : result.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; a bad command line exits 2 (commander printed why).
      return err.exitCode === 0 ? 0 : EXIT.USAGE;
    }
    if (err instanceof CliError) {
      processIo.err(`error: ${err.message}`);
      return err.code;
    }
    if ((err as Error).name === "AbortError") return EXIT.INTERRUPTED;
    processIo.err(`error: ${(err as Error).message}`);
    return EXIT.FAILED;
  }
}

main().then((code) => {
  // Let stdout drain (a pipe is asynchronous) before exiting.
  process.stdout.write("", () => process.exit(code));
});
