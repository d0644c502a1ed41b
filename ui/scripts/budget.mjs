// Fails the build when the gzipped UI (app.js + app.css + index.html) exceeds 250 KB.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const LIMIT = 250 * 1024;
let total = 0;
for (const name of ["app.js", "app.css", "index.html"]) {
  const raw = readFileSync(new URL(`../dist/${name}`, import.meta.url));
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  console.log(`${name.padEnd(11)} ${String(raw.length).padStart(8)} B  gzip ${String(gz).padStart(7)} B`);
}
console.log(`total gzip  ${total} B (${(total / 1024).toFixed(1)} KB of ${LIMIT / 1024} KB)`);
if (total > LIMIT) {
  console.error("over budget");
  process.exit(1);
}
