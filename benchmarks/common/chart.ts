/**
 * Horizontal bar charts as standalone SVG, for docs/img: one panel per metric, one bar per row,
 * each panel scaled to its own largest value.
 */
export interface BarPanel {
  readonly title: string;
  readonly rows: ReadonlyArray<{ readonly label: string; readonly value: number; readonly color: string }>;
  readonly format: (v: number) => string;
}

export function barChartSvg(title: string, panels: readonly BarPanel[], width = 980): string {
  const labelWidth = 400;
  const valueWidth = 80;
  const barHeight = 18;
  const gap = 4;
  const parts: string[] = [];
  let y = 10;
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y + 16}" font-size="13" font-weight="bold">${panel.title}</text>`);
    y += 28;
    const max = Math.max(...panel.rows.map((r) => r.value), 1e-9);
    for (const row of panel.rows) {
      const len = ((width - labelWidth - valueWidth) * row.value) / max;
      parts.push(
        `<text x="${labelWidth - 6}" y="${y + barHeight - 5}" font-size="11" text-anchor="end">${row.label}</text>` +
          `<rect x="${labelWidth}" y="${y}" width="${len.toFixed(1)}" height="${barHeight}" fill="${row.color}"/>` +
          `<text x="${labelWidth + len + 4}" y="${y + barHeight - 5}" font-size="11">${panel.format(row.value)}</text>`,
      );
      y += barHeight + gap;
    }
    y += 14;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" role="img">\n<title>${title}</title>\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
