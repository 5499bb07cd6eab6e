/**
 * koffi may be imported in src/syscalls/ only: everything else goes through its wrappers, so a
 * koffi-free build of the loop (or a move to another FFI) touches one folder. Biome's
 * noRestrictedImports says the same at lint time; this test makes `npm test` enforce it too.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

// import … from 'koffi', import('koffi'), require('koffi'), export … from 'koffi'
const KOFFI = /(?:from\s*|import\s*\(\s*|require\s*\(\s*|import\s+)['"]koffi(?:\/[^'"]*)?['"]/;

describe('koffi boundary', () => {
  it('no file outside src/syscalls/ imports koffi', () => {
    const offenders: string[] = [];
    for (const folder of ['src', 'examples', 'benchmarks']) {
      let files: string[];
      try {
        files = sources(join(root, folder));
      } catch {
        continue;
      }
      for (const file of files) {
        const rel = relative(root, file);
        if (rel.startsWith(`src${sep}syscalls${sep}`)) continue;
        if (KOFFI.test(readFileSync(file, 'utf8'))) offenders.push(rel);
      }
    }
    expect(offenders, 'files importing koffi outside src/syscalls/').to.deep.equal([]);
  });

  it('the pattern catches every import form', () => {
    for (const line of [
      "import koffi from 'koffi';",
      'import { load } from "koffi";',
      "const k = await import('koffi');",
      "const k = require('koffi');",
      "export { load } from 'koffi';",
      "import 'koffi';",
    ]) {
      expect(KOFFI.test(line), line).to.equal(true);
    }
    expect(KOFFI.test("import { x } from './koffi-free.js';")).to.equal(false);
  });
});
