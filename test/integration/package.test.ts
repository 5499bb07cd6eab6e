/**
 * The package as npm publishes it: `require()` works (Node >= 20.19 loads ES modules through
 * require when they have no top-level await), and the tarball holds every file its documents link
 * to, and no tests or benchmark code.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('the npm package', function () {
  this.timeout(60_000);
  let dir: string | undefined;

  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("require('multireactor') and require('multireactor/offload-task') work from a CommonJS module", () => {
    dir = mkdtempSync(join(tmpdir(), 'mr-require-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'multireactor'), 'dir');
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        "const m = require('multireactor'); const t = require('multireactor/offload-task');" +
          'console.log(typeof m.Server.listen, typeof m.http, typeof m.Pipeline, typeof t.move)',
      ],
      { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(out.trim()).to.equal('function function function function');
  });

  it('the tarball holds every file its documents link to, and no tests', () => {
    const listing = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const files = new Set((JSON.parse(listing)[0].files as Array<{ path: string }>).map((f) => f.path));
    expect(files.has('dist/src/index.js')).to.equal(true);
    expect(files.has('LICENSE')).to.equal(true);
    for (const f of files)
      expect(f, 'no test or benchmark code in the package').to.not.match(
        /^(dist\/)?(test|benchmarks\/(?!README\.md$))/,
      );
    const missing: string[] = [];
    for (const doc of [...files].filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const path = normalize(join(dirname(doc), target));
        if (!files.has(path) && ![...files].some((f) => f.startsWith(`${path}/`))) missing.push(`${doc} -> ${target}`);
      }
    }
    expect(missing, 'links to files the package does not hold').to.deep.equal([]);
  });
});
