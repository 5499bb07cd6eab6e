/**
 * Ready-made handlers: idle detection and heartbeats.
 */
export { HeartbeatHandler, type HeartbeatOptions } from './heartbeat.js';
export { type IdleState, IdleStateEvent, IdleStateHandler, type IdleStateOptions } from './idle-state.js';
