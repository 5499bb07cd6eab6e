// `npm run docs`, last step: every public export (a top-level reflection of the generated API) carries
// a TSDoc comment of its own, and so does every field of an options interface (that is where a
// user looks up a default). The check reads the source, not the reflection's comment: TypeDoc
// shows a base class's comment for an undocumented subclass, which would pass unnoticed.
// Other members are not required (many override documented base methods). Exits 1 with a list.
//
// test/unit/api-docs.test.ts runs the same rule on the source alone within `npm test`, without
// TypeDoc; this check is the authority, as it sees exactly what the reference shows.
import { readFileSync } from 'node:fs';

const KIND_MODULE = 2;
const KIND_INTERFACE = 256;
const KIND_PROPERTY = 1024;
const KIND_REFERENCE = 4194304; // a second export of a reflection documented where it is declared

const api = JSON.parse(readFileSync(process.argv[2] ?? 'docs/api/api.json', 'utf8'));
const sources = new Map();
function lines(file) {
  if (!sources.has(file)) sources.set(file, readFileSync(file, 'utf8').split('\n'));
  return sources.get(file);
}

/** Whether the declaration at `src` follows a `/** … *\/` block (blank lines between allowed). */
function ownComment(src) {
  if (src === undefined) return true; // nothing to point at (a re-exported module namespace)
  const text = lines(src.fileName);
  let i = src.line - 2; // the line before the declaration (1-based line → 0-based index, minus one)
  while (i >= 0 && text[i].trim() === '') i--;
  if (i < 0) return false;
  const end = text[i];
  if (!end.trim().endsWith('*/')) return false;
  // Find where that block opens: on the same line (`/** one line */`) or above.
  while (i >= 0 && !text[i].includes('/*')) i--;
  return i >= 0 && /\/\*\*(?!\*)/.test(text[i]);
}

const missing = [];
function where(r) {
  const src = r.sources?.[0];
  return src === undefined ? '' : ` (${src.fileName}:${src.line})`;
}
function walk(node, path) {
  for (const child of node.children ?? []) {
    if (child.kind === KIND_MODULE) {
      walk(child, `${child.name}: `);
      continue;
    }
    if (child.kind === KIND_REFERENCE) continue;
    if (!ownComment(child.sources?.[0])) missing.push(`${path}${child.name}${where(child)}`);
    if (child.kind === KIND_INTERFACE && child.name.endsWith('Options')) {
      for (const field of child.children ?? []) {
        if (field.kind !== KIND_PROPERTY || field.inheritedFrom !== undefined) continue;
        if (!ownComment(field.sources?.[0])) missing.push(`${path}${child.name}.${field.name}${where(field)}`);
      }
    }
  }
}
walk(api, '');
if (missing.length > 0) {
  console.error(
    `${missing.length} public exports or options fields have no TSDoc comment of their own:\n  ${missing.join('\n  ')}`,
  );
  process.exit(1);
}
console.log('every public export and options field has a TSDoc comment of its own');
