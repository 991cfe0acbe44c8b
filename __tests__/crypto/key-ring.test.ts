// KeyRing and the AES-256-GCM envelope on their own: round trips, and every way a value can fail to
// authenticate (tampered, truncated, another storage key, an unknown key) is `undefined`, never a throw.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { DistributedTokenCache, envelopeKeyId, KeyRing } from '../../src';
import { thrownBy } from '../helpers/assertions';

const storageKey = 'msal-dc:cache:{0123456789abcdef0123456789abcdef}';
const plaintext = JSON.stringify({ Account: { a: { username: 'someone@example.test' } }, AccessToken: { t: { secret: 'eyJ-secret' } } });

function ring(activeKeyId = 'a', ids = ['a']): KeyRing {
  return new KeyRing({ keys: ids.map((id) => ({ id, key: keyOf(id) })), activeKeyId });
}

const keys = new Map<string, Buffer>();
function keyOf(id: string): Buffer {
  if (!keys.has(id)) keys.set(id, randomBytes(32));
  return keys.get(id)!;
}

/** Flips one bit of the decoded byte at `index` of the envelope's last field (ciphertext + tag). */
function flipBodyByte(envelope: string, index: number): string {
  const parts = envelope.split('.');
  const body = Buffer.from(parts[4]!, 'base64url');
  body[index] = body[index]! ^ 0x01;
  parts[4] = body.toString('base64url');
  return parts.join('.');
}

describe('KeyRing encrypt / decrypt', () => {
  it('round trips, with a fresh IV every time, in the documented format', () => {
    const keyRing = ring();
    const first = keyRing.encrypt(plaintext, storageKey);
    const second = keyRing.encrypt(plaintext, storageKey);
    expect(first).toMatch(/^mdc1\.a\.u\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(first).not.toBe(second);
    expect(first).not.toContain('eyJ-secret');
    expect(keyRing.decrypt(first, storageKey)).toBe(plaintext);
    expect(keyRing.decrypt(second, storageKey)).toBe(plaintext);
    expect(envelopeKeyId(first)).toBe('a');
    expect(keyRing.decrypt(keyRing.encrypt('', storageKey), storageKey)).toBe('');
    const unicode = 'Zoë ✓ 𝄞';
    expect(keyRing.decrypt(keyRing.encrypt(unicode, storageKey), storageKey)).toBe(unicode);
  });

  it('compresses when asked, flags it in the envelope and still round trips', () => {
    const keyRing = ring();
    const large = JSON.stringify({
      AccessToken: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`key-${i}`, { scopes: 'User.Read', i }])),
    });
    const plain = keyRing.encrypt(large, storageKey);
    const compressed = keyRing.encrypt(large, storageKey, { compress: true });
    expect(compressed.split('.')[2]).toBe('z');
    expect(compressed.length).toBeLessThan(plain.length);
    expect(keyRing.decrypt(compressed, storageKey)).toBe(large);
  });

  it('a flipped byte anywhere in the ciphertext or tag is undefined', () => {
    const keyRing = ring();
    const envelope = keyRing.encrypt(plaintext, storageKey);
    const length = Buffer.from(envelope.split('.')[4]!, 'base64url').length;
    for (const index of [0, Math.floor(length / 2), length - 17, length - 16, length - 1]) {
      expect(keyRing.decrypt(flipBodyByte(envelope, index), storageKey)).toBeUndefined();
    }
    const parts = envelope.split('.');
    const iv = Buffer.from(parts[3]!, 'base64url');
    iv[0] = iv[0]! ^ 0x80;
    expect(keyRing.decrypt([...parts.slice(0, 3), iv.toString('base64url'), parts[4]].join('.'), storageKey)).toBeUndefined();
  });

  it('a changed header (compression flag, version, key id) is undefined', () => {
    const keyRing = ring('a', ['a', 'b']);
    const envelope = keyRing.encrypt(plaintext, storageKey);
    const [, , , iv, body] = envelope.split('.');
    expect(keyRing.decrypt(`mdc1.a.z.${iv}.${body}`, storageKey)).toBeUndefined();
    expect(keyRing.decrypt(`mdc2.a.u.${iv}.${body}`, storageKey)).toBeUndefined();
    expect(keyRing.decrypt(`mdc1.b.u.${iv}.${body}`, storageKey)).toBeUndefined();
  });

  it('a truncated envelope is undefined', () => {
    const keyRing = ring();
    const envelope = keyRing.encrypt(plaintext, storageKey);
    for (const cut of [1, 4, 10, 22, envelope.length - 40, envelope.length - 1]) {
      expect(keyRing.decrypt(envelope.slice(0, cut), storageKey)).toBeUndefined();
    }
    const parts = envelope.split('.');
    const body = Buffer.from(parts[4]!, 'base64url');
    parts[4] = body.subarray(0, body.length - 1).toString('base64url');
    expect(keyRing.decrypt(parts.join('.'), storageKey)).toBeUndefined();
  });

  it('another storage key (additional authenticated data) is undefined', () => {
    const keyRing = ring();
    const envelope = keyRing.encrypt(plaintext, storageKey);
    expect(keyRing.decrypt(envelope, 'msal-dc:cache:{ffffffffffffffffffffffffffffffff}')).toBeUndefined();
    expect(keyRing.decrypt(envelope, `${storageKey} `)).toBeUndefined();
    expect(keyRing.decrypt(envelope, '')).toBeUndefined();
  });

  it('a key id not in the ring, or the same id with another key, is undefined', () => {
    const envelope = ring('a').encrypt(plaintext, storageKey);
    expect(ring('b', ['b']).decrypt(envelope, storageKey)).toBeUndefined();
    const sameIdOtherKey = new KeyRing({ keys: [{ id: 'a', key: randomBytes(32) }], activeKeyId: 'a' });
    expect(sameIdOtherKey.decrypt(envelope, storageKey)).toBeUndefined();
  });

  it('anything that is not an envelope is undefined (plain text is never passed through)', () => {
    const keyRing = ring();
    for (const value of [plaintext, '', 'mdc1', 'mdc1.a.u..', 'mdc1.a.u.!!!.???', '\u0000\u00ff', 'mdc1.a.u.a.b.c']) {
      expect(keyRing.decrypt(value, storageKey)).toBeUndefined();
    }
    expect(keyRing.decrypt(42 as unknown as string, storageKey)).toBeUndefined();
    expect(envelopeKeyId(plaintext)).toBeUndefined();
  });

  it('rotation: every listed key decrypts, the active one encrypts', () => {
    const old = ring('a', ['a']);
    const rotated = ring('b', ['a', 'b']);
    const written = old.encrypt(plaintext, storageKey);
    expect(rotated.decrypt(written, storageKey)).toBe(plaintext);
    const rewritten = rotated.encrypt(plaintext, storageKey);
    expect(envelopeKeyId(rewritten)).toBe('b');
    expect(old.decrypt(rewritten, storageKey)).toBeUndefined();
    expect(rotated.activeKeyId).toBe('b');
    expect(rotated.keyIds).toEqual(['a', 'b']);
  });

  it('accepts keys as base64 and base64url strings and copies Buffers', () => {
    const key = randomBytes(32);
    const fromBuffer = new KeyRing({ keys: [{ id: 'k', key }], activeKeyId: 'k' });
    const envelope = fromBuffer.encrypt(plaintext, storageKey);
    key.fill(0); // the ring kept its own copy
    expect(fromBuffer.decrypt(envelope, storageKey)).toBe(plaintext);
    const material = keyOf('a');
    const base64 = new KeyRing({ keys: [{ id: 'a', key: material.toString('base64') }], activeKeyId: 'a' });
    const base64url = new KeyRing({ keys: [{ id: 'a', key: material.toString('base64url') }], activeKeyId: 'a' });
    const sealed = ring('a').encrypt(plaintext, storageKey);
    expect(base64.decrypt(sealed, storageKey)).toBe(plaintext);
    expect(base64url.decrypt(sealed, storageKey)).toBe(plaintext);
  });

  it('never shows key material when inspected or serialized', () => {
    const key = randomBytes(32);
    const keyRing = new KeyRing({ keys: [{ id: 'k', key }], activeKeyId: 'k' });
    for (const text of [inspect(keyRing, { depth: 10, showHidden: true }), JSON.stringify(keyRing)]) {
      expect(text).not.toContain(key.toString('base64'));
      expect(text).not.toContain(key.toString('hex'));
    }
  });
});

describe('KeyRing options', () => {
  const good = (): { id: string; key: Buffer } => ({ id: 'a', key: randomBytes(32) });

  it.each([
    ['no options', 'options', undefined, 'ERR_INVALID_ARG_TYPE'],
    ['a string', 'options', 'a', 'ERR_INVALID_ARG_TYPE'],
    ['no keys', 'options.keys', { activeKeyId: 'a' }, 'ERR_INVALID_ARG_TYPE'],
    ['an empty key list', 'options.keys', { keys: [], activeKeyId: 'a' }, 'ERR_INVALID_ARG_VALUE'],
    ['a key entry that is not an object', 'options.keys[0]', { keys: [null], activeKeyId: 'a' }, 'ERR_INVALID_ARG_TYPE'],
    ['a missing id', 'options.keys[0].id', { keys: [{ key: randomBytes(32) }], activeKeyId: 'a' }, 'ERR_INVALID_ARG_TYPE'],
    ['an empty id', 'options.keys[0].id', { keys: [{ id: '', key: randomBytes(32) }], activeKeyId: 'a' }, 'ERR_INVALID_ARG_VALUE'],
    [
      "an id with '.'",
      'options.keys[0].id',
      { keys: [{ id: 'v1.2', key: randomBytes(32) }], activeKeyId: 'v1.2' },
      'ERR_INVALID_ARG_VALUE',
    ],
    [
      'an id over 64 characters',
      'options.keys[0].id',
      { keys: [{ id: 'x'.repeat(65), key: randomBytes(32) }], activeKeyId: 'a' },
      'ERR_INVALID_ARG_VALUE',
    ],
    [
      'a duplicate id',
      'options.keys[1].id',
      {
        keys: [
          { id: 'a', key: randomBytes(32) },
          { id: 'a', key: randomBytes(32) },
        ],
        activeKeyId: 'a',
      },
      'ERR_INVALID_ARG_VALUE',
    ],
    ['a missing key', 'options.keys[0].key', { keys: [{ id: 'a' }], activeKeyId: 'a' }, 'ERR_INVALID_ARG_TYPE'],
    ['a number as key', 'options.keys[0].key', { keys: [{ id: 'a', key: 42 }], activeKeyId: 'a' }, 'ERR_INVALID_ARG_TYPE'],
    ['a 16-byte key', 'options.keys[0].key', { keys: [{ id: 'a', key: randomBytes(16) }], activeKeyId: 'a' }, 'ERR_INVALID_ARG_VALUE'],
    ['a 33-byte key', 'options.keys[0].key', { keys: [{ id: 'a', key: randomBytes(33) }], activeKeyId: 'a' }, 'ERR_INVALID_ARG_VALUE'],
    [
      'a base64 key of 24 bytes',
      'options.keys[0].key',
      { keys: [{ id: 'a', key: randomBytes(24).toString('base64') }], activeKeyId: 'a' },
      'ERR_INVALID_ARG_VALUE',
    ],
    [
      'a key string that is not base64',
      'options.keys[0].key',
      { keys: [{ id: 'a', key: 'not base64 at all!' }], activeKeyId: 'a' },
      'ERR_INVALID_ARG_VALUE',
    ],
    ['no active key id', 'options.activeKeyId', { keys: [good()] }, 'ERR_INVALID_ARG_TYPE'],
    ['an active key id not in the ring', 'options.activeKeyId', { keys: [good()], activeKeyId: 'b' }, 'ERR_INVALID_ARG_VALUE'],
  ])('%s: "%s" is refused with %s', (_description, field, options, code) => {
    const error = thrownBy(() => new KeyRing(options as never));
    expect(error.code).toBe(code);
    expect(error.message).toContain(`"${field}"`);
  });

  it('messages never contain key material', () => {
    const short = randomBytes(31).toString('base64');
    const error = thrownBy(() => new KeyRing({ keys: [{ id: 'a', key: short }], activeKeyId: 'a' }));
    expect(error.message).not.toContain(short);
  });

  it('DistributedTokenCache refuses a bad encryption option at construction', () => {
    const keyRing = new KeyRing({ keys: [good()], activeKeyId: 'a' });
    expect(thrownBy(() => new DistributedTokenCache({ encryption: 'key' as never })).message).toContain('"options.encryption"');
    const notARing = thrownBy(() => new DistributedTokenCache({ encryption: { keyRing: { keys: [good()], activeKeyId: 'a' } as never } }));
    expect(notARing).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(notARing.message).toContain('"options.encryption.keyRing"');
    const compress = thrownBy(() => new DistributedTokenCache({ encryption: { keyRing, compress: 'yes' as never } }));
    expect(compress).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(compress.message).toContain('"options.encryption.compress"');
  });
});
