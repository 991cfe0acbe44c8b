/**
 * Keyed hashes of authorization codes and of the proof that a duplicate belongs to the same
 * sign-in (PKCE verifier, explicit binding), and the MACs of redemption records. Codes and bindings
 * are never stored, logged or emitted raw: only HMAC-SHA-256 under a key that every instance of the
 * app derives alike from a secret of the app.
 */
import { createHash, createHmac, createPrivateKey, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { NodeAuthOptions } from '@azure/msal-node';

export class CodeHasher {
  private readonly key: Buffer;
  /** A separate key for record MACs, so that no MAC can be mistaken for a code or binding hash. */
  private readonly macKey: Buffer;

  /** @param secret - the app's hashing secret; every instance must use the same */
  constructor(secret: string | Buffer) {
    this.key = createHash('sha256').update('msal-distributed-cache/code-hash/v1').update(secret).digest();
    this.macKey = Buffer.from(hkdfSync('sha256', this.key, 'msal-distributed-cache', 'record-mac/v1', 32));
  }

  /** The keyed hash naming a code in keys, records and events (128 bits, hex). */
  code(code: string): string {
    return this.hmac(`code\u0000${code}`).slice(0, 32);
  }

  /** The keyed hash of a request's proof of sign-in, or `''` when it carries none. */
  binding(proof: { codeVerifier?: string | undefined; binding?: string | undefined }): string {
    if (proof.codeVerifier === undefined && proof.binding === undefined) return '';
    return this.hmac(`binding\u0000${proof.binding ?? ''}\u0000verifier\u0000${proof.codeVerifier ?? ''}`);
  }

  /**
   * The MAC (HMAC-SHA-256, base64url) of a stored record, bound to where it is stored: a record
   * copied to another key, or edited, fails {@link verifyRecord}.
   */
  macRecord(storageKey: string, text: string): string {
    return this.recordHmac(storageKey, text).toString('base64url');
  }

  /** Whether `mac` is {@link macRecord}'s for this record at this key (constant time). */
  verifyRecord(storageKey: string, text: string, mac: string): boolean {
    const expected = this.recordHmac(storageKey, text);
    const given = Buffer.from(mac, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private recordHmac(storageKey: string, text: string): Buffer {
    return createHmac('sha256', this.macKey).update(`record\u0000${storageKey}\u0000`, 'utf8').update(text, 'utf8').digest();
  }

  private hmac(text: string): string {
    return createHmac('sha256', this.key).update(text, 'utf8').digest('hex');
  }
}

/**
 * The default hashing secret of an app: its client id plus a secret of its credential. With a
 * client secret, that secret; with a certificate, its private key (never the thumbprint, which is
 * public: it is in the app registration and in the `x5t` of every assertion). A client assertion
 * alone gives no secret: `secret` is then `false`, and the caller must say that `codeHashKey` is needed.
 */
export function defaultCodeHashSecret(auth: NodeAuthOptions): { material: string | Buffer; secret: boolean } {
  if (auth.clientSecret) return { material: `${auth.clientId}\u0000${auth.clientSecret}`, secret: true };
  const privateKey = auth.clientCertificate?.privateKey;
  if (privateKey) {
    return { material: Buffer.concat([Buffer.from(`${auth.clientId}\u0000private-key\u0000`), canonicalKey(privateKey)]), secret: true };
  }
  return { material: `${auth.clientId}\u0000`, secret: false };
}

/** The key as PKCS#8 DER, so that instances holding one key in differently formatted PEM agree. */
function canonicalKey(pem: string): Buffer {
  try {
    return createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  } catch {
    return Buffer.from(pem, 'utf8'); // not parseable here (MSAL reports it): the text is still secret
  }
}
