// Builds the console into dist/: content-hashed assets (cached for good) and an index.html that
// names them (never cached). No CDN at run time: everything it loads is in dist/.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { build } from "esbuild";

const dist = new URL("./dist/", import.meta.url);
rmSync(dist, { recursive: true, force: true });
mkdirSync(new URL("assets/", dist), { recursive: true });

const result = await build({
  entryPoints: [new URL("./src/main.tsx", import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: new URL("assets/", dist).pathname,
  entryNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = outputs.find((f) => f.endsWith(".js"));
const css = outputs.find((f) => f.endsWith(".css"));
if (!js || !css) throw new Error(`console build: expected a .js and a .css output, got ${outputs.join(", ")}`);
const html = readFileSync(new URL("./src/index.html", import.meta.url), "utf8")
  .replace("%APP_JS%", `/ui/assets/${js}`)
  .replace("%APP_CSS%", `/ui/assets/${css}`);
writeFileSync(new URL("index.html", dist), html);
console.log(`[console] built dist/index.html, assets/${js}, assets/${css}`);
