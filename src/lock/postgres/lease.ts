/** The PostgreSQL lock store's leases: what it keeps in one (its owner value and row) and how it recognizes its own. */
import { InvalidArgumentError } from '../../errors';
import type { Lease } from '../lock-store';

/** A lease of this store: its owner value (`<token>:<fence>`) is what the statements check. */
export interface PostgresLease extends Lease {
  readonly ownerValue: string;
  readonly row: string;
  markEnded(): void;
}

/** The fence of a live owner value of `token`, or `undefined`. */
export function ownFence(owner: string | undefined, token: string): number | undefined {
  return owner?.startsWith(`${token}:`) ? Number(owner.slice(token.length + 1)) : undefined;
}

/** `lease` as one of this store's leases. */
export function ownLease(lease: Lease): PostgresLease {
  const owned = lease as PostgresLease;
  if (!owned.ownerValue || !owned.row)
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', '"lease" must come from this store\'s claim()');
  return owned;
}
