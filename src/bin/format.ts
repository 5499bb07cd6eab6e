/** How the `multireactor` command line prints what a master answers (kept apart from its main, for tests). */
import type { StatusResult, WorkerStatusRow } from '../ops/protocol.js';

/** `12s`, `3m 4s`, `2h 3m`, `4d 2h`. */
export function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** `512 KiB`, `61.2 MiB`, `1.50 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GiB`;
}

/** The `status` table. */
export function formatStatus(s: StatusResult): string {
  const m = s.master;
  const head = [
    `master ${m.pid}  ${m.phase}  ${m.ready ? 'ready' : `not ready (${m.readyReason})`}  up ${formatUptime(m.uptimeSeconds)}`,
    `  serving ${m.address} with ${m.slots} worker slot${m.slots === 1 ? '' : 's'}; reloads: ${m.reloads.ok} ok, ${m.reloads.failed} failed`,
  ];
  if (m.admin !== null) head.push(`  admin ${m.admin}`);
  if (m.control !== null) head.push(`  control ${m.control}`);
  const columns = ['SLOT', 'PID', 'GEN', 'STATE', 'UPTIME', 'CONNS', 'REQUESTS', 'RSS', 'RESTARTS'];
  const rows = s.workers.map((w: WorkerStatusRow) => [
    String(w.slot),
    String(w.pid),
    String(w.generation),
    w.state,
    formatUptime(w.uptimeSeconds),
    w.connections === null ? '-' : String(w.connections),
    w.requests === null ? '-' : String(w.requests),
    w.rssBytes === null ? '-' : formatBytes(w.rssBytes),
    String(w.restarts),
  ]);
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return `${head.join('\n')}\n\n${[line(columns), ...rows.map(line)].join('\n')}\n`;
}
