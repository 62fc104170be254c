// Build dist/ from the modules the demo page serves (server/control/static/),
// so the page and this package run the same code: the files are copied as
// they are, except that the page's path to its vendored msgpack becomes the
// package dependency "@msgpack/msgpack". Runs before `npm pack` (prepack).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const STATIC = join(here, "..", "..", "server", "control", "static");
const DIST = join(here, "dist");
export const MODULES = ["tickroom.js", "wire.js", "predict.js", "arena.js"];
const VENDORED = '"./vendor/msgpack/index.mjs"';

rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST);
for (const name of MODULES) {
  const source = readFileSync(join(STATIC, name), "utf8");
  if (name === "tickroom.js") {
    if (!source.includes(VENDORED)) throw new Error(`build: ${name} no longer imports ${VENDORED}; update build.mjs`);
    writeFileSync(join(DIST, name), source.replace(VENDORED, '"@msgpack/msgpack"'));
  } else {
    if (source.includes("./vendor/")) throw new Error(`build: ${name} imports a vendored file; update build.mjs`);
    copyFileSync(join(STATIC, name), join(DIST, name));
  }
}
console.log(`build: ${MODULES.join(", ")} -> dist/`);
