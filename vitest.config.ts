import { defineConfig } from "vitest/config";

const exclude = ["**/node_modules/**", "**/dist/**"];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "tests/**/*.test.ts"],
          exclude: [...exclude, "**/*.int.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["packages/*/src/**/*.int.test.ts", "services/*/src/**/*.int.test.ts", "tests/**/*.int.test.ts"],
          exclude,
          // Integration tests share two cores with real sshd nodes and torch processes.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
          globalSetup: ["packages/testkit/src/global-setup.ts"],
          // Reports and kills whatever a file left running on the test nodes.
          setupFiles: ["packages/testkit/src/node-hygiene.ts"],
        },
      },
    ],
  },
});
