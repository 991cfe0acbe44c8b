// Hashes for anything that must not appear raw in a key, log, event or error (SHA-256, hex).
import { createHash } from 'node:crypto';

/** SHA-256 of `text`, hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The first 32 hex characters (128 bits) of SHA-256: enough to name a partition without saying it. */
export function shortHash(text: string): string {
  return sha256Hex(text).slice(0, 32);
}
