/**
 * What offloading can report to a pipeline. Each error carries the message (or task) it is about,
 * so that the protocol stage that receives it can answer *that* request (HTTP: 503 or 500).
 */
import { ReactorError } from '../common/errors.js';

/**
 * Builds an error without capturing a stack trace. For the outcomes that are expected under load
 * or at every disconnect (overload, abort), raised from one place each: the stack says nothing,
 * and capturing it costs more than the rest of the rejection (gnet preallocates its hot-path
 * errors for the same reason).
 */
function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The pool's queue is full (`maxQueue` tasks wait already): the message was not offloaded. A
 * protocol stage answers it ("busy, retry later"); nothing was queued.
 */
export class OffloadOverloadedError extends ReactorError {
  /** The message that could not be offloaded. */
  readonly input: unknown;

  constructor(input: unknown, maxQueue: number) {
    super('ERR_OFFLOAD_OVERLOADED', `the offload pool is overloaded (${maxQueue} tasks queued already)`);
    this.name = 'OffloadOverloadedError';
    this.input = input;
  }

  /** Without a stack trace (see `withoutStack`). */
  static create(input: unknown, maxQueue: number): OffloadOverloadedError {
    return withoutStack(() => new OffloadOverloadedError(input, maxQueue));
  }
}

/**
 * The task function threw (or its module could not be loaded, or its thread died). `cause` is the
 * error as it came back from the thread: structured-cloned, so an `Error` keeps its message and
 * stack but not its class.
 */
export class OffloadTaskError extends ReactorError {
  /** The message whose task failed. */
  readonly input: unknown;

  constructor(input: unknown, cause: unknown) {
    super('ERR_OFFLOAD_TASK', `offloaded task failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'OffloadTaskError';
    this.input = input;
  }
}

/**
 * The task will not run or its result will not be delivered: its connection closed, or the pool
 * was destroyed (the server stopped). Never fired into a pipeline — a closed connection has nobody
 * to tell — but an HTTP handler awaiting `offload()` sees it (and may simply let it propagate).
 */
export class OffloadAbortedError extends ReactorError {
  constructor(message = 'the offloaded task was aborted: its connection closed') {
    super('ERR_OFFLOAD_ABORTED', message);
    this.name = 'OffloadAbortedError';
  }

  /** Without a stack trace (see `withoutStack`). */
  static create(message?: string): OffloadAbortedError {
    return withoutStack(() => new OffloadAbortedError(message));
  }
}
