/**
 * The command line of every benchmark script: examples/cli.ts's `cli` (`--help`, a one-line error
 * and exit 2 for a bad option), with the script's own header comment — which says what it
 * measures and how to run it — and its options with their defaults as the usage.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cli, type Options, type Values } from '../../examples/cli.js';

export { listOption, parseDecimal, parseInteger, usageError } from '../../examples/cli.js';

/** The parsed options of the script at `scriptUrl` (its `import.meta.url`). */
export function scriptCli<const O extends Options>(scriptUrl: string, options: O): Values<O> {
  const source = readFileSync(fileURLToPath(scriptUrl), 'utf8');
  const header = /\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '';
  const text = header
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
  const list = Object.entries(options).map(([name, o]) => {
    const dflt = 'default' in o && o.default !== undefined ? ` (default ${String(o.default)})` : '';
    const value =
      'integer' in o
        ? ` N (${o.integer[0]} to ${o.integer[1]})`
        : 'number' in o
          ? ` X (${o.number[0]} to ${o.number[1]})`
          : 'choices' in o
            ? ` ${o.choices.join('|')}`
            : o.type === 'string'
              ? ' VALUE'
              : '';
    return `  --${name}${value}${dflt}`;
  });
  return cli(`${text}\n\nOptions:\n${list.join('\n')}\n  --help, -h`, options);
}
