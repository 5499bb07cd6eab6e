/**
 * The Prometheus text exposition format, version 0.0.4 (the format every Prometheus server and
 * agent scrapes; `Content-Type: text/plain; version=0.0.4`):
 *
 *     # HELP multireactor_connections_accepted_total Connections accepted.
 *     # TYPE multireactor_connections_accepted_total counter
 *     multireactor_connections_accepted_total{worker="0"} 1027
 *
 * Written here rather than with prom-client: its registry holds metrics that the process itself
 * updates, while ours are a snapshot of numbers the workers sent over IPC at scrape time, folded
 * with those of workers gone — prom-client would need a registry rebuilt per scrape and counters
 * set rather than incremented. The format is small: one HELP and one TYPE line per family, then
 * one line per sample; label values escape `\`, `"` and newline; HELP text escapes `\` and newline;
 * values are Go floats (`+Inf`, `-Inf`, `NaN`). Families must not repeat, and a histogram's
 * samples are `_bucket{le}` (cumulative, ending with `le="+Inf"`), `_sum` and `_count`.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** A label set: names to values, in the order given. */
export type Labels = ReadonlyArray<readonly [string, string]>;

/** Escapes a label value (`\`, `"`, newline). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text (`\` and newline). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the format writes it. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** `{a="1",b="x"}`, or '' for no labels. */
export function formatLabels(labels: Labels): string {
  if (labels.length === 0) return '';
  let out = '{';
  for (let i = 0; i < labels.length; i++) {
    const [name, value] = labels[i] as readonly [string, string];
    out += `${i === 0 ? '' : ','}${name}="${escapeLabelValue(value)}"`;
  }
  return `${out}}`;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Builds one exposition: families in the order they are declared, each with its samples. */
export class Exposition {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();

  /** Starts a family: its HELP and TYPE lines. Throws for a bad name or a family declared twice. */
  family(name: string, type: MetricType, help: string): this {
    if (!NAME.test(name)) throw new Error(`bad metric name ${JSON.stringify(name)}`);
    if (this.declared.has(name)) throw new Error(`metric family ${name} declared twice`);
    this.declared.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  /** One sample line (`name` is the family's, or a histogram's `_bucket`/`_sum`/`_count`). */
  sample(name: string, labels: Labels, value: number): this {
    this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** The exposition text (ends with a newline, as the format wants). */
  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/** The Content-Type of the text format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
