/**
 * `--tls-cert FILE --tls-key FILE` for the examples: the `tls` option of `Server.listen`, read from
 * PEM files (making them: docs/tls.md). The files are read when the script runs — in a cluster, by
 * every worker as it starts — so a reload (SIGUSR2) serves whatever the files hold by then:
 * certificate rotation without dropping a connection.
 */
import { readFileSync } from 'node:fs';
import type { TlsServerOptions } from '../src/index.js';

/** `{ tls }` when both files are given, `{}` when neither; exits with a message when only one is. */
export function tlsOptions(
  certFile: string | undefined,
  keyFile: string | undefined,
  alpn?: readonly string[],
): { tls?: TlsServerOptions } {
  if (certFile === undefined && keyFile === undefined) return {};
  if (certFile === undefined || keyFile === undefined) {
    process.stderr.write('--tls-cert and --tls-key go together\n');
    process.exit(2);
  }
  try {
    return {
      tls: {
        cert: readFileSync(certFile),
        key: readFileSync(keyFile),
        ...(alpn !== undefined ? { alpn } : {}),
      },
    };
  } catch (err) {
    process.stderr.write(`cannot read the TLS files: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
