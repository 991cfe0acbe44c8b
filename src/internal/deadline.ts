// Every store and lock call gets a deadline of our own: @keyv/redis with default options waits
// forever while Redis is down, and a command already on the wire to a paused server never returns.
import { StoreUnavailableError } from '../errors';

/**
 * Resolves or rejects as `work` does, or rejects with `StoreUnavailableError` after `timeoutMs`.
 * The timer is unref'd so a pending deadline never keeps the process alive. `budgetMs` is the
 * whole budget named in the message when `timeoutMs` is what is left of it.
 */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, operation: string, budgetMs = timeoutMs): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StoreUnavailableError(
            `${operation} did not answer within ${budgetMs} ms; check the store's connection (see docs/failure-modes.md)`,
          ),
        ),
      timeoutMs,
    );
    timer.unref();
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    throw new StoreUnavailableError(`${operation} failed: ${describe(error)}; check the store's connection (see docs/failure-modes.md)`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined); // a late rejection after the deadline must not go unhandled
  }
}

/** What is left of a deadline; at least 1 ms, so that a late step still fails by the timer. */
export function remainingMs(deadlineAt: number): number {
  return Math.max(1, deadlineAt - Date.now());
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
