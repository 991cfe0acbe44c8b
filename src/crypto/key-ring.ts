/**
 * KeyRing: the AES-256 keys that encrypt values at rest. The active key encrypts; every listed key
 * decrypts, so keys can be rotated without losing data. Keys are validated at construction and
 * held in private fields (never logged, inspected or serialized).
 */
import { InvalidArgumentError } from '../errors';
import { requireNonEmptyString, requireObject, typeName } from '../internal/validate';
import { openEnvelope, sealEnvelope } from './envelope';

/** One key of a {@link KeyRing}. */
export interface KeyRingKey {
  /**
   * Names the key in every envelope it encrypts (stored in plain text: not a secret). Non-empty,
   * at most 64 characters, no `.` and no control characters; unique in the ring.
   */
  id: string;
  /** 32 random bytes (AES-256), as bytes or as a base64 (or base64url) string. */
  key: Uint8Array | string;
}

/** Options of {@link KeyRing}. */
export interface KeyRingOptions {
  /** Every key that may have encrypted a stored value: the active one and those being retired. */
  keys: readonly KeyRingKey[];
  /** The id of the key that encrypts new values; it must be in `keys`. */
  activeKeyId: string;
}

const KEY_BYTES = 32;
const MAX_KEY_ID_LENGTH = 64;
const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/;

/**
 * AES-256-GCM keys for encryption at rest, with rotation: the active key encrypts, every listed key
 * decrypts. Give it to {@link DistributedTokenCache} as `encryption: { keyRing }`; every instance
 * sharing the store needs the same keys. See docs/security.md for the format and key rotation.
 *
 * @example
 * ```ts
 * // generate a key once: node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"
 * const keyRing = new KeyRing({ keys: [{ id: '2025-01', key: process.env.CACHE_KEY_2025_01! }], activeKeyId: '2025-01' });
 * const cache = new DistributedTokenCache({ store, encryption: { keyRing } });
 * ```
 *
 * @example
 * Rotating: deploy the new key to every instance first, then make it the active one.
 * ```ts
 * const rotating = new KeyRing({
 *   keys: [
 *     { id: '2025-01', key: process.env.CACHE_KEY_2025_01! }, // still decrypts what it wrote
 *     { id: '2025-07', key: process.env.CACHE_KEY_2025_07! },
 *   ],
 *   activeKeyId: '2025-07',
 * });
 * ```
 */
export class KeyRing {
  /** The id of the key that encrypts. */
  readonly activeKeyId: string;
  /** Every key id, in the order given. */
  readonly keyIds: readonly string[];
  readonly #keys: ReadonlyMap<string, Buffer>;

  /**
   * Validates and copies the keys.
   *
   * @param options - the keys and the id of the active one
   * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE`)
   *   naming the bad field (`options.keys[1].key`, `options.activeKeyId`, ...); the message never
   *   contains key material
   */
  constructor(options: KeyRingOptions) {
    requireObject(options, 'options');
    if (!Array.isArray(options.keys))
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_TYPE',
        `"options.keys" must be an array of { id, key }, got ${typeName(options.keys)}`,
      );
    if (options.keys.length === 0)
      throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', '"options.keys" must hold at least one key, got an empty array');
    const keys = new Map<string, Buffer>();
    options.keys.forEach((entry: unknown, index) => {
      const name = `options.keys[${index}]`;
      const { id, key } = requireObject(entry, name);
      const keyId = requireNonEmptyString(id, `${name}.id`, MAX_KEY_ID_LENGTH);
      if (keyId.includes('.')) throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}.id" must not contain '.'`);
      if (keys.has(keyId))
        throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}.id" must be unique, but '${keyId}' is listed twice`);
      keys.set(keyId, keyBytes(key, `${name}.key`));
    });
    const activeKeyId = requireNonEmptyString(options.activeKeyId, 'options.activeKeyId', MAX_KEY_ID_LENGTH);
    if (!keys.has(activeKeyId))
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_VALUE',
        `"options.activeKeyId" must be the id of one of "options.keys", got '${activeKeyId}'`,
      );
    this.#keys = keys;
    this.activeKeyId = activeKeyId;
    this.keyIds = Object.freeze([...keys.keys()]);
  }

  /**
   * Encrypts `plaintext` with the active key into an envelope bound to `storageKey` (the key the
   * value is stored under: authenticated, not stored).
   *
   * @param plaintext - the value to encrypt
   * @param storageKey - the key it will be stored under (authenticated, not stored)
   * @param options.compress - deflate the plaintext before encrypting (flagged in the envelope)
   * @returns `mdc1.<key id>.<u|z>.<iv>.<ciphertext + tag>` (see docs/security.md)
   *
   * @example
   * ```ts
   * const sealed = keyRing.encrypt(JSON.stringify({ theme: 'dark' }), 'prefs:alice');
   * keyRing.decrypt(sealed, 'prefs:alice'); // '{"theme":"dark"}'
   * keyRing.decrypt(sealed, 'prefs:bob'); // undefined: written for another key
   * ```
   */
  encrypt(plaintext: string, storageKey: string, options: { compress?: boolean } = {}): string {
    return sealEnvelope(this.activeKeyId, this.#keys.get(this.activeKeyId)!, plaintext, storageKey, options.compress === true);
  }

  /**
   * Decrypts an envelope written for `storageKey` with whichever listed key it names.
   *
   * @param envelope - what {@link encrypt} returned
   * @param storageKey - the key it was stored under
   *
   * @returns the plaintext, or `undefined` (never throws) when the value is not an envelope, names
   *   a key not in the ring, was written for another storage key, or was altered or truncated
   */
  decrypt(envelope: string, storageKey: string): string | undefined {
    return openEnvelope(envelope, storageKey, (keyId) => this.#keys.get(keyId));
  }
}

function keyBytes(value: unknown, name: string): Buffer {
  let bytes: Buffer;
  if (value instanceof Uint8Array) {
    bytes = Buffer.from(value); // a copy: later changes to the caller's buffer do not reach the ring
  } else if (typeof value === 'string') {
    if (!BASE64.test(value))
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_VALUE',
        `"${name}" must be ${KEY_BYTES} bytes encoded as base64, got a string that is not base64`,
      );
    bytes = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64');
  } else {
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      `"${name}" must be a Buffer or a base64 string of ${KEY_BYTES} bytes, got ${typeName(value)}`,
    );
  }
  if (bytes.length !== KEY_BYTES)
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be ${KEY_BYTES} bytes (AES-256), got ${bytes.length}`);
  return bytes;
}
