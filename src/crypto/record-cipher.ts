/**
 * The `encryption` option of DistributedTokenCache and the cipher that applies it to every value
 * the cache stores (partition contents, redemption outcome records), each bound to its storage key.
 */
import { InvalidArgumentError } from '../errors';
import { requireObject, typeName } from '../internal/validate';
import { KeyRing } from './key-ring';

/** Encryption at rest of everything the token cache stores (see docs/security.md). */
export interface EncryptionOptions {
  /** The keys: the active one encrypts, all decrypt. */
  keyRing: KeyRing;
  /** Deflate values before encrypting them (MSAL's JSON shrinks a lot). @defaultValue `false` */
  compress?: boolean;
}

/** @internal Seals and opens stored values; `open` is `undefined` for anything not ours. */
export class RecordCipher {
  constructor(
    private readonly keyRing: KeyRing,
    private readonly compress: boolean,
  ) {}

  seal(plaintext: string, storageKey: string): string {
    return this.keyRing.encrypt(plaintext, storageKey, { compress: this.compress });
  }

  open(value: string, storageKey: string): string | undefined {
    return this.keyRing.decrypt(value, storageKey);
  }
}

/** @internal Validates the `encryption` option; `undefined` means values are stored in plain text. */
export function recordCipherFrom(value: unknown, name: string): RecordCipher | undefined {
  if (value === undefined) return undefined;
  const { keyRing, compress } = requireObject(value, name);
  if (!(keyRing instanceof KeyRing))
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      `"${name}.keyRing" must be a KeyRing (new KeyRing({ keys, activeKeyId })), got ${typeName(keyRing)}`,
    );
  if (compress !== undefined && typeof compress !== 'boolean')
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}.compress" must be a boolean, got ${typeName(compress)}`);
  return new RecordCipher(keyRing, compress === true);
}
