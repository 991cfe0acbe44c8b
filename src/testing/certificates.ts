/**
 * Test certificates for the fake Entra ID: a throwaway CA and a loopback server certificate it
 * signs, built with node:crypto alone (a minimal DER encoder) so the testing entry point needs no
 * extra dependency and nothing is downloaded or shelled out.
 *
 * Not for production use: keys live in memory and certificates last one day.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** A certificate and its private key, both PEM. */
export interface CertificateAndKey {
  /** The certificate, PEM. */
  certPem: string;
  /** Its private key (PKCS #8), PEM. */
  keyPem: string;
}

// --- minimal DER encoding -------------------------------------------------------------------

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => der(0x30, ...items);
const set = (...items: Buffer[]): Buffer => der(0x31, ...items);
const octetString = (content: Buffer): Buffer => der(0x04, content);
const bitString = (content: Buffer): Buffer => der(0x03, Buffer.from([0]), content);
const utf8String = (text: string): Buffer => der(0x0c, Buffer.from(text, 'utf8'));
const booleanTrue = (): Buffer => der(0x01, Buffer.from([0xff]));
const explicit = (tagNumber: number, content: Buffer): Buffer => der(0xa0 | tagNumber, content);

function positiveInteger(bytes: Buffer): Buffer {
  // DER integers are minimal: no leading zero byte unless the next byte's high bit is set
  // (a leading 0x00 before a byte < 0x80 is "illegal padding" to OpenSSL).
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const minimal = bytes.subarray(start);
  return der(0x02, minimal[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), minimal]) : minimal);
}

function objectId(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes: number[] = [first! * 40 + second!];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let value = arc >> 7; value > 0; value >>= 7) chunk.unshift((value & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}

function utcTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-22T19:17:13.000Z
  const text = iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  return der(0x17, Buffer.from(text, 'ascii'));
}

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

const name = (commonName: string): Buffer => sequence(set(sequence(objectId(OID.commonName), utf8String(commonName))));

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectId(oid), ...(critical ? [booleanTrue()] : []), octetString(value));
}

function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

interface CertificateSpec {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  issuerPublicKey: KeyObject;
  isCa: boolean;
  /** IPv4 addresses and DNS names for subjectAltName (server certificates only). */
  ipAddresses?: string[];
  dnsNames?: string[];
}

function buildCertificate(spec: CertificateSpec): string {
  const algorithm = sequence(objectId(OID.ecdsaWithSha256));
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + 24 * 60 * 60 * 1000);
  const extensions: Buffer[] = [
    extension(OID.basicConstraints, true, spec.isCa ? sequence(booleanTrue()) : sequence()),
    // keyCertSign|cRLSign for the CA, digitalSignature for the server.
    extension(OID.keyUsage, true, spec.isCa ? bitString(Buffer.from([0x06])) : bitString(Buffer.from([0x80]))),
    extension(OID.subjectKeyId, false, octetString(keyIdentifier(spec.publicKey))),
    extension(OID.authorityKeyId, false, sequence(der(0x80, keyIdentifier(spec.issuerPublicKey)))),
  ];
  if (!spec.isCa) {
    extensions.push(extension(OID.extKeyUsage, false, sequence(objectId(OID.serverAuth))));
    const altNames = [
      ...(spec.dnsNames ?? []).map((dns) => der(0x82, Buffer.from(dns, 'ascii'))),
      ...(spec.ipAddresses ?? []).map((ip) => der(0x87, Buffer.from(ip.split('.').map(Number)))),
    ];
    extensions.push(extension(OID.subjectAltName, false, sequence(...altNames)));
  }
  const tbs = sequence(
    explicit(0, der(0x02, Buffer.from([2]))), // version v3
    positiveInteger(randomBytes(16)),
    algorithm,
    name(spec.issuer),
    sequence(utcTime(notBefore), utcTime(notAfter)),
    name(spec.subject),
    spec.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, spec.signingKey);
  const certificate = sequence(tbs, algorithm, bitString(signature));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

function newKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/**
 * Creates a self-signed certificate authority for loopback tests.
 *
 * @returns the CA certificate and private key (PEM)
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 *
 * const ca = createTestCertificateAuthority();
 * writeFileSync('ca.pem', ca.certPem); // then NODE_EXTRA_CA_CERTS=ca.pem
 * ```
 */
export function createTestCertificateAuthority(): CertificateAndKey {
  const { publicKey, privateKey } = newKeyPair();
  const certPem = buildCertificate({
    subject: 'msal-distributed-cache test CA',
    issuer: 'msal-distributed-cache test CA',
    publicKey,
    signingKey: privateKey,
    issuerPublicKey: publicKey,
    isCa: true,
  });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * Issues a server certificate for 127.0.0.1 and localhost, signed by `ca`.
 *
 * @param ca - the authority from {@link createTestCertificateAuthority}
 * @returns the server certificate and private key (PEM)
 */
export function issueLoopbackServerCertificate(ca: CertificateAndKey): CertificateAndKey {
  const { publicKey, privateKey } = newKeyPair();
  const caPublicKey = createPublicKey(ca.keyPem);
  const certPem = buildCertificate({
    subject: '127.0.0.1',
    issuer: 'msal-distributed-cache test CA',
    publicKey,
    signingKey: createPrivateKey(ca.keyPem),
    issuerPublicKey: caPublicKey,
    isCa: false,
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
  });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
