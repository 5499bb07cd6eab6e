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
  readonly logger?: Logger | undefined;
}

/** The stages for a server's options, in wire order; throws `InvalidOptionError` for a bad option. */
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
  // TLS (issue 18) goes here, after the PROXY protocol stage: `stages.push({ name: 'tls', … })`.
  return stages;
}
