/**
 * The encryption envelope of values at rest: AES-256-GCM (node:crypto) with a 12-byte random IV,
 * a 16-byte tag, and the value's storage key as additional authenticated data, optionally
 * compressed with raw DEFLATE first. Format (one string, see docs/security.md):
 *
 *   `mdc1.<key id>.<u|z>.<base64url IV>.<base64url ciphertext + tag>`
 *
 * `u`: the plaintext is UTF-8 as is; `z`: it was compressed (deflateRaw) before encryption. The
 * authenticated data is `<header>\0<storage key>`, header = `mdc1.<key id>.<u|z>`, so neither the
 * header nor the key a value was written under can be changed without failing the tag check.
 * Opening never throws: anything that does not authenticate is `undefined`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

/** The version tag every envelope starts with. */
export const ENVELOPE_VERSION = 'mdc1';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bound on a decompressed value: a partition is kilobytes; this only stops a pathological input. */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Seals `plaintext` under `key` (32 bytes), named `keyId` in the envelope, bound to `storageKey`. */
export function sealEnvelope(keyId: string, key: Buffer, plaintext: string, storageKey: string, compress: boolean): string {
  const header = `${ENVELOPE_VERSION}.${keyId}.${compress ? 'z' : 'u'}`;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(header, storageKey));
  const utf8 = Buffer.from(plaintext, 'utf8');
  const body = Buffer.concat([cipher.update(compress ? deflateRawSync(utf8) : utf8), cipher.final(), cipher.getAuthTag()]);
  return `${header}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/**
 * Opens an envelope written for `storageKey`; `keyFor` returns the key of an id, or `undefined`.
 *
 * @returns the plaintext, or `undefined` when the value is not an envelope, names an unknown key,
 *   was written for another storage key, or was altered or truncated
 */
export function openEnvelope(value: string, storageKey: string, keyFor: (keyId: string) => Buffer | undefined): string | undefined {
  try {
    const parts = parseEnvelope(value);
    if (!parts) return undefined;
    const key = keyFor(parts.keyId);
    if (!key) return undefined;
    const decipher = createDecipheriv(ALGORITHM, key, parts.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(parts.header, storageKey));
    decipher.setAuthTag(parts.body.subarray(parts.body.length - TAG_BYTES));
    const opened = Buffer.concat([decipher.update(parts.body.subarray(0, parts.body.length - TAG_BYTES)), decipher.final()]);
    return (parts.compressed ? inflateRawSync(opened, { maxOutputLength: MAX_INFLATED_BYTES }) : opened).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * The id of the key an envelope names (not checked against any key), or `undefined` when `value`
 * is not an envelope. For monitoring a key rotation: which stored values still use an old key.
 *
 * @param value - a stored value (on Redis, the `cache` field of a partition)
 *
 * @example
 * ```ts
 * envelopeKeyId(keyRing.encrypt('secret', 'some-key')); // keyRing.activeKeyId
 * envelopeKeyId('{"Account":{}}'); // undefined: plain text
 * ```
 */
export function envelopeKeyId(value: string): string | undefined {
  return parseEnvelope(value)?.keyId;
}

function parseEnvelope(value: string): { header: string; keyId: string; compressed: boolean; iv: Buffer; body: Buffer } | undefined {
  if (typeof value !== 'string') return undefined;
  const parts = value.split('.');
  if (parts.length !== 5) return undefined;
  const [version, keyId, encoding, iv, body] = parts as [string, string, string, string, string];
  if (version !== ENVELOPE_VERSION || keyId === '' || (encoding !== 'u' && encoding !== 'z')) return undefined;
  if (!BASE64URL.test(iv) || !BASE64URL.test(body)) return undefined;
  const ivBytes = Buffer.from(iv, 'base64url');
  const bodyBytes = Buffer.from(body, 'base64url');
  // Canonical encodings only: the decoder would otherwise ignore stray trailing bits.
  if (ivBytes.length !== IV_BYTES || ivBytes.toString('base64url') !== iv) return undefined;
  if (bodyBytes.length < TAG_BYTES || bodyBytes.toString('base64url') !== body) return undefined;
  return { header: `${version}.${keyId}.${encoding}`, keyId, compressed: encoding === 'z', iv: ivBytes, body: bodyBytes };
}

function associatedData(header: string, storageKey: string): Buffer {
  return Buffer.from(`${header}\u0000${storageKey}`, 'utf8');
}
