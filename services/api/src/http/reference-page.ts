import { createRequire } from "node:module";
import { dirname } from "node:path";
import express, { Router } from "express";

export const REFERENCE_PATH = "/docs";
export const OPENAPI_PATH = "/openapi.json";

const require = createRequire(import.meta.url);
/** swagger-ui-dist's files, served from the API itself: the page works without the internet. */
const assetsDir = dirname(require.resolve("swagger-ui-dist/package.json"));

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Trainyard API reference</title>
  <link rel="stylesheet" href="${REFERENCE_PATH}/assets/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="${REFERENCE_PATH}/assets/swagger-ui-bundle.js"></script>
  <script src="${REFERENCE_PATH}/init.js"></script>
</body>
</html>
`;
// An external script, so the page runs under the default Content-Security-Policy (no inline scripts).
const init = `window.ui = SwaggerUIBundle({ url: ${JSON.stringify(OPENAPI_PATH)}, dom_id: "#reference", deepLinking: true });\n`;

/** The readable API reference at /docs, rendered from /openapi.json. */
export function referencePage(): Router {
  const r = Router();
  r.get("/", (_req, res) => {
    res.type("html").send(page);
  });
  r.get("/init.js", (_req, res) => {
    res.type("application/javascript").send(init);
  });
  r.use("/assets", express.static(assetsDir, { index: false, maxAge: "1h" }));
  return r;
}
