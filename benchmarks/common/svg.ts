/**
 * The benchmarks' bar charts: panels of horizontal bars, one per measured value, scaled within
 * their group (a scenario), written as a standalone SVG for docs/img/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Bar {
  readonly label: string;
  readonly value: number;
  readonly color: string;
  /** Bars of one group share a scale (their group's largest value is the full width). */
  readonly group: string;
}

export interface BarPanel {
  readonly title: string;
  readonly bars: readonly Bar[];
  readonly format: (v: number) => string;
}

/** Panels stacked top to bottom; `labelWidth` is the room left of the bars for their labels. */
export function barChartSvg(
  title: string,
  panels: readonly BarPanel[],
  {
    width = 1020,
    panelHeight = 230,
    labelWidth = 310,
  }: { width?: number; panelHeight?: number; labelWidth?: number } = {},
): string {
  const pad = { l: labelWidth, r: 90, t: 34 };
  const parts: string[] = [];
  let y0 = 10;
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y0 + 16}" font-size="13" font-weight="bold">${panel.title}</text>`);
    const groupMax = new Map<string, number>();
    for (const b of panel.bars) groupMax.set(b.group, Math.max(groupMax.get(b.group) ?? 0, b.value));
    const barH = Math.max(6, Math.floor((panelHeight - pad.t) / Math.max(1, panel.bars.length)) - 2);
    panel.bars.forEach((bar, i) => {
      const max = groupMax.get(bar.group) || 1;
      const y = y0 + pad.t + i * (barH + 2);
      const len = ((width - pad.l - pad.r) * bar.value) / max;
      parts.push(
        `<text x="${pad.l - 6}" y="${y + barH - 1}" font-size="10" text-anchor="end">${bar.label}</text><rect x="${pad.l}" y="${y}" width="${len.toFixed(1)}" height="${barH}" fill="${bar.color}"/><text x="${pad.l + len + 4}" y="${y + barH - 1}" font-size="10">${panel.format(bar.value)}</text>`,
      );
    });
    y0 += pad.t + panel.bars.length * (barH + 2) + 20;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y0 + 10}" font-family="sans-serif" role="img">\n<title>${title}</title>\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}

/** Writes `svg` to `path` (creating its folder) and says so on stderr. */
export function writeSvg(path: string, svg: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
  process.stderr.write(`wrote ${path}\n`);
}
