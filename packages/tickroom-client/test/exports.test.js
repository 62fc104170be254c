// The declarations and the modules agree: every name types/*.d.ts declares
// is exported by dist/ with the right kind, and dist/ is the demo page's
// code (server/control/static/) with only the msgpack import changed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const STATIC = join(root, "..", "..", "server", "control", "static");
const ENTRIES = { tickroom: "@tickroom/client", wire: "@tickroom/client/wire", predict: "@tickroom/client/predict", arena: "@tickroom/client/arena" };
const KINDS = { const: ["number", "object", "string"], function: ["function"], class: ["function"] };

for (const [name, specifier] of Object.entries(ENTRIES)) {
  test(`${specifier} exports what types/${name}.d.ts declares`, async () => {
    const declared = [...readFileSync(join(root, "types", `${name}.d.ts`), "utf8").matchAll(/^export declare (const|function|class) (\w+)/gm)];
    assert.ok(declared.length > 0);
    const module = await import(specifier);
    for (const [, kind, exported] of declared) {
      assert.ok(exported in module, `${exported} is declared but not exported`);
      assert.ok(KINDS[kind].includes(typeof module[exported]), `${exported}: declared ${kind}, is ${typeof module[exported]}`);
    }
  });

  test(`dist/${name}.js is the demo page's ${name}.js`, () => {
    const served = readFileSync(join(STATIC, `${name}.js`), "utf8");
    const packaged = readFileSync(join(root, "dist", `${name}.js`), "utf8");
    assert.equal(packaged, served.replace('"./vendor/msgpack/index.mjs"', '"@msgpack/msgpack"'));
  });
}

test("the re-exports of the main entry are wire.js's", async () => {
  const main = await import("@tickroom/client");
  const wire = await import("@tickroom/client/wire");
  for (const name of ["applySnapshot", "buildSchema", "DesyncError", "entityOf", "sortedIds"]) assert.equal(main[name], wire[name]);
});
