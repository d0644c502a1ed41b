// Bundles the operator UI into dist/ with fixed names so the binary can embed it (deterministic bytes).
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "iife",
  target: "es2020",
  outdir: "dist",
  entryNames: "[name]",
  legalComments: "none",
  charset: "utf8",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
// index.html is copied byte for byte: the CSP forbids inline script and style, so it holds neither.
writeFileSync("dist/index.html", readFileSync("src/index.html"));
