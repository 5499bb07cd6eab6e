/**
 * The API reference (`npm run docs`, TypeDoc) is only as good as the TSDoc it is built from. This
 * guard runs in `npm test`, without TypeDoc or the network: every name the package exports (from
 * src/index.ts and src/offload/task.ts, following re-exports) is declared right after a `/** … *\/`
 * block of its own, so is every field of an exported options interface, and every `@example` in
 * src/ compiles against the built package. tools/typedoc/check-docs.mjs applies the first two rules
 * to what TypeDoc actually saw; this test reads the source with the same rule so that a new
 * undocumented export fails CI even where the reference is not built.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ENTRY_POINTS = ['src/index.ts', 'src/offload/task.ts'];

interface Declaration {
  readonly name: string;
  readonly kind: string;
  readonly file: string; // relative to ROOT
  readonly line: number; // 0-based
}

const texts = new Map<string, string[]>();
function lines(file: string): string[] {
  let t = texts.get(file);
  if (t === undefined) {
    t = readFileSync(join(ROOT, file), 'utf8').split('\n');
    texts.set(file, t);
  }
  return t;
}

function target(from: string, specifier: string): string {
  if (!specifier.startsWith('.')) throw new Error(`${from}: re-export of a package (${specifier}) is not followed`);
  return relative(ROOT, resolve(ROOT, dirname(from), specifier.replace(/\.js$/, '.ts')));
}

/** The local declarations of a module: `export class|interface|type|function|const|… Name`. */
function localDeclarations(file: string): Map<string, Declaration> {
  const out = new Map<string, Declaration>();
  const decl =
    /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?(class|interface|type|function\*?|const|let|enum)\s+([A-Za-z_$][\w$]*)/;
  lines(file).forEach((text, line) => {
    const m = decl.exec(text);
    // The first one counts: an overloaded function is documented above its first signature.
    if (m !== null && !out.has(m[2] as string))
      out.set(m[2] as string, { name: m[2] as string, kind: m[1] as string, file, line });
  });
  return out;
}

/** `a, type b, c as d` → [[a, a], [b, b], [c, d]]. */
function names(list: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of list.split(',')) {
    const item = raw.trim().replace(/^type\s+/, '');
    if (item === '') continue;
    const [local, alias = local] = item.split(/\s+as\s+/) as [string, string?];
    out.push([local, alias]);
  }
  return out;
}

/** A module's named imports: local name → the exported name and the specifier it comes from. */
function imports(text: string): Map<string, { name: string; from: string }> {
  const out = new Map<string, { name: string; from: string }>();
  for (const m of text.matchAll(/^import\s+(?:type\s+)?\{([^}]*)\}\s*from\s+'([^']+)'/gm)) {
    for (const [name, local] of names(m[1] as string)) out.set(local, { name, from: m[2] as string });
  }
  return out;
}

const moduleExports = new Map<string, Map<string, Declaration>>();
/** Every name `file` exports, mapped to where it is declared (re-exports followed to their source). */
function exportsOf(file: string): Map<string, Declaration> {
  const cached = moduleExports.get(file);
  if (cached !== undefined) return cached;
  const out = new Map(localDeclarations(file));
  const text = lines(file).join('\n');
  for (const m of text.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}\s*(?:from\s+'([^']+)')?/gm)) {
    for (const [local, exported] of names(m[1] as string)) {
      // `export { X }` without `from` re-exports an imported name: follow the import.
      const from = m[2] ?? imports(text).get(local)?.from;
      const original = m[2] === undefined ? (imports(text).get(local)?.name ?? local) : local;
      if (from === undefined) throw new Error(`${file}: cannot tell where ${local} (exported) comes from`);
      const d = exportsOf(target(file, from)).get(original);
      if (d === undefined) throw new Error(`${file}: ${original} is not exported by ${from}`);
      out.set(exported, d);
    }
  }
  for (const m of text.matchAll(/^export\s+\*\s+from\s+'([^']+)'/gm)) {
    for (const [name, d] of exportsOf(target(file, m[1] as string))) if (!out.has(name)) out.set(name, d);
  }
  moduleExports.set(file, out);
  return out;
}

/** Whether line `line` of `file` follows a `/** … *\/` block (blank lines between allowed). */
function hasOwnComment(file: string, line: number): boolean {
  const text = lines(file);
  let i = line - 1;
  while (i >= 0 && (text[i] as string).trim() === '') i--;
  if (i < 0 || !(text[i] as string).trim().endsWith('*/')) return false;
  while (i >= 0 && !(text[i] as string).includes('/*')) i--;
  return i >= 0 && /\/\*\*(?!\*)/.test(text[i] as string);
}

/** The lines of the direct fields of the interface declared at `line` (nested object types skipped). */
function interfaceFields(file: string, line: number): Array<{ name: string; line: number }> {
  const text = lines(file);
  const out: Array<{ name: string; line: number }> = [];
  let depth = 0;
  let inComment = false;
  for (let i = line; i < text.length; i++) {
    let code = text[i] as string;
    // Braces inside comments (`{ idle, interval }` in a sentence) are not structure.
    if (inComment) {
      const end = code.indexOf('*/');
      if (end < 0) continue;
      code = code.slice(end + 2);
      inComment = false;
    }
    code = code.replace(/\/\*.*?\*\//g, '').replace(/\/\/.*$/, '');
    const open = code.indexOf('/*');
    if (open >= 0) {
      code = code.slice(0, open);
      inComment = true;
    }
    if (depth === 1) {
      const m = /^\s*(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*:/.exec(code);
      if (m !== null) out.push({ name: m[1] as string, line: i });
    }
    for (const ch of code) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth === 0 && i > line && code.includes('}')) break;
  }
  return out;
}

function publicDeclarations(): Declaration[] {
  const seen = new Set<string>();
  const out: Declaration[] = [];
  for (const entry of ENTRY_POINTS) {
    for (const d of exportsOf(entry).values()) {
      const key = `${d.file}:${d.line}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}

/** `@example` blocks of the TSDoc in `src/`: the code of each one's ```ts fence. */
function examples(): Array<{ where: string; code: string }> {
  const out: Array<{ where: string; code: string }> = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) {
        const text = lines(path);
        for (let i = 0; i < text.length; i++) {
          if (!/^\s*\*\s*@example\b/.test(text[i] as string)) continue;
          let j = i + 1;
          while (j < text.length && !/^\s*\*\s*```(ts|typescript)\s*$/.test(text[j] as string)) {
            if (/^\s*\*\/|^\s*\*\s*@/.test(text[j] as string))
              throw new Error(`${path}:${i + 1}: @example without a \`\`\`ts fence`);
            j++;
          }
          const code: string[] = [];
          for (j++; j < text.length && !/^\s*\*\s*```\s*$/.test(text[j] as string); j++) {
            code.push((text[j] as string).replace(/^\s*\* ?/, ''));
          }
          out.push({ where: `${path}:${i + 1}`, code: code.join('\n') });
          i = j;
        }
      }
    }
  };
  walk('src');
  return out;
}

describe('the API reference: TSDoc on every public export', () => {
  it('finds the public API (a sanity check of the export resolver)', () => {
    const names = new Set(ENTRY_POINTS.flatMap((e) => [...exportsOf(e).keys()]));
    for (const n of ['Server', 'Pipeline', 'http', 'websocket', 'ServerHandle', 'LengthFieldFrameDecoder', 'move']) {
      expect(names.has(n), n).to.equal(true);
    }
    expect(names.size).to.be.greaterThan(200);
  });

  it('every exported declaration has a /** … */ block of its own', () => {
    const missing = publicDeclarations()
      .filter((d) => !hasOwnComment(d.file, d.line))
      .map((d) => `${d.name} (${d.file}:${d.line + 1})`);
    expect(missing, 'public exports without TSDoc').to.deep.equal([]);
  });

  it('every field of an exported options interface has one (the default lives there)', () => {
    const missing: string[] = [];
    for (const d of publicDeclarations()) {
      if (d.kind !== 'interface' || !d.name.endsWith('Options')) continue;
      for (const f of interfaceFields(d.file, d.line)) {
        if (!hasOwnComment(d.file, f.line)) missing.push(`${d.name}.${f.name} (${d.file}:${f.line + 1})`);
      }
    }
    expect(missing, 'options fields without TSDoc').to.deep.equal([]);
  });

  it('every @example compiles against the built package', function () {
    this.timeout(60_000);
    const all = examples();
    expect(all.length).to.be.greaterThan(10);
    // Inside the package root, so that `import … from 'multireactor'` resolves to the package itself
    // (its `exports`, dist/src/*.d.ts), the way a user's code sees it.
    const dir = join(ROOT, 'dist', 'doc-examples');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const index: string[] = [];
    all.forEach((e, n) => {
      const file = `example-${n}.ts`;
      index.push(`${file}: ${e.where}`);
      writeFileSync(join(dir, file), `// ${e.where}\n${e.code}\nexport {};\n`);
    });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../tsconfig.json',
        compilerOptions: {
          rootDir: '.',
          noEmit: true,
          incremental: false,
          noUnusedLocals: false,
          noUnusedParameters: false,
          types: ['node'],
        },
        include: ['*.ts'],
        exclude: [],
      }),
    );
    let output = '';
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    expect(output, `examples that do not compile (files in dist/doc-examples):\n${index.join('\n')}\n`).to.equal('');
    rmSync(dir, { recursive: true, force: true });
  });
});
