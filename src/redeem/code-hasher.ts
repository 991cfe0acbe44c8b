/**
 * Keyed hashes of authorization codes and of the proof that a duplicate belongs to the same
 * sign-in (PKCE verifier, explicit binding). Codes and bindings are never stored, logged or
 * emitted raw: only HMAC-SHA-256 under a key that every instance of the app derives alike.
 */
import { createHash, createHmac } from 'node:crypto';

export class CodeHasher {
  private readonly key: Buffer;

  /** @param secret - the app's hashing secret; every instance must use the same */
  constructor(secret: string | Buffer) {
    this.key = createHash('sha256').update('msal-distributed-cache/code-hash/v1').update(secret).digest();
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

  private hmac(text: string): string {
    return createHmac('sha256', this.key).update(text, 'utf8').digest('hex');
  }
}
