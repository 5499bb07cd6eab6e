/**
 * The stages a server puts before the user's pipeline on every connection (pipeline/stages.ts),
 * built from its options when it starts — so that a bad option fails `listen`, not a connection.
 * Their order is the order on the wire: the PROXY protocol header comes first, in clear, before
 * any TLS record; TLS hands plaintext to the user's handlers. proxy-protocol → tls → the user's.
 */

import {
  ProxyProtocolConfig,
  ProxyProtocolDecoder,
  type ProxyProtocolOptions,
  proxyProtocolStats,
} from './codec/proxy-protocol.js';
import { consoleLogger, type Logger } from './common/logger.js';
import type { OptionKeys } from './common/options.js';
import type { ServerStage } from './pipeline/stages.js';
import { TlsContext } from './tls/context.js';
import { TlsHandler } from './tls/handler.js';
import type { TlsServerOptions } from './tls/options.js';
import { addWorkerReport } from './worker/serving.js';

/** `ServerOptions.proxyProtocol`: the decoder's options but its logger (the server's) and counters (the process's). */
export type ServerProxyProtocolOptions = Pick<ProxyProtocolOptions, 'trusted' | 'required' | 'timeout'>;

/** The keys `proxyProtocol` accepts (common/options.ts: kept in step with the type by `tsc`). */
export const PROXY_PROTOCOL_KEYS = {
  trusted: true,
  required: true,
  timeout: true,
} as const satisfies OptionKeys<ServerProxyProtocolOptions>;

/** What `serverStages` reads of the server's options. */
export interface StageOptions {
  readonly proxyProtocol?: ServerProxyProtocolOptions | undefined;
  readonly tls?: TlsServerOptions | undefined;
  readonly logger?: Logger | undefined;
}

/**
 * The stages for a server's options, in wire order; throws `InvalidOptionError` for a bad option.
 * A stage may hold resources for the server's whole life (TLS: an SSL_CTX, built from the
 * certificate files this process read — a reload's new workers read them anew): whoever builds the
 * stages frees them with `closeStages`.
 */
export function serverStages(options: StageOptions): ServerStage[] {
  const stages: ServerStage[] = [];
  if (options.proxyProtocol !== undefined) {
    const config = new ProxyProtocolConfig(
      options.proxyProtocol,
      'proxyProtocol',
      PROXY_PROTOCOL_KEYS,
      options.logger ?? consoleLogger(),
    );
    stages.push({
      name: 'proxy-protocol',
      // Trust decided from the packed sockaddr of accept(2): no address text per connection.
      create: (_channel, peer) => new ProxyProtocolDecoder(config, config.trusted.containsPacked(peer)),
    });
    // The master's collectStats() shows each worker's counters (`workers[i].reports.proxyProtocol`).
    addWorkerReport('proxyProtocol', proxyProtocolStats);
  }
  if (options.tls !== undefined) {
    let tls: TlsContext;
    try {
      // One SSL_CTX per server and process (and SNI contexts): every connection's SSL comes from it.
      tls = TlsContext.server(options.tls, options.logger ?? consoleLogger());
    } catch (err) {
      closeStages(stages);
      throw err;
    }
    stages.push({
      name: 'tls',
      create: () => new TlsHandler(tls),
      close: () => tls.close(),
      stats: () => tls.snapshot(),
    });
  }
  return stages;
}

/** Frees what `serverStages` built (the TLS context), once the server no longer serves. */
export function closeStages(stages: readonly ServerStage[]): void {
  for (const stage of stages) stage.close?.();
}
