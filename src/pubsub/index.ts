/**
 * Publish/subscribe across workers and machines (docs/pubsub.md): `PubSub`, on WebSocket groups,
 * through a master's relay or Redis.
 */

export { GlobPattern, globMatch } from '../common/glob.js';
export {
  type PubSubOptions,
  type PubSubReconnectOptions,
  parseRedisUrl,
  type RedisAddress,
  type RedisOptions,
} from './options.js';
export {
  PubSub,
  type PubSubListener,
  type PubSubPublishOptions,
  type PubSubPublishResult,
  type PubSubStats,
  type PubSubSubscription,
} from './pubsub.js';
