// What telemetry reads from untrusted text, and how strictly: the grant of a token request's body,
// the AADSTS family of an error code, an error's type, an OAuth error, and the traceparent carried
// in a flight's outcome (authenticated, and still read as untrusted).
import { ServerError } from '@azure/msal-node';
import { InvalidArgumentError, LockTimeoutError } from '../../src';
import { openFlightOutcome, sealFlightOutcome } from '../../src/flight/flight-outcome';
import type { FlightOutcome } from '../../src/flight/flight-outcome';
import { CodeHasher } from '../../src/redeem/code-hasher';
import { aadstsFamilyOf, errorTypeOf, oauthErrorOf } from '../../src/telemetry/names';
import { grantTypeOf } from '../../src/telemetry/token-requests';
import { parseTraceparent, traceparentOf } from '../../src/telemetry/traceparent';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('the grant of a token request: from grant_type only, the known ones by name, anything odd as _OTHER', () => {
  expect(grantTypeOf('client_id=x&grant_type=authorization_code&code=SECRET&code_verifier=SECRET')).toBe('authorization_code');
  expect(grantTypeOf('grant_type=refresh_token&refresh_token=SECRET')).toBe('refresh_token');
  expect(grantTypeOf('scope=a&grant_type=client_credentials')).toBe('client_credentials');
  expect(grantTypeOf('grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=SECRET')).toBe('on_behalf_of');
  expect(grantTypeOf('grant_type=device_code')).toBe('device_code');
  expect(grantTypeOf('client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer')).toBe('_OTHER');
  expect(grantTypeOf('grant_type=%E0%A4%A')).toBe('_OTHER');
  expect(grantTypeOf('grant_type=has%20spaces%20and%20a%20SECRET-that-is-long')).toBe('_OTHER');
  expect(grantTypeOf(undefined)).toBe('_OTHER');
});

test('the AADSTS family: AADSTS and the first two digits, the rest as x', () => {
  expect([70000, 54005, 7000215, 50011, 900144, 501481].map(aadstsFamilyOf)).toEqual([
    'AADSTS70xxx',
    'AADSTS54xxx',
    'AADSTS70xxxxx',
    'AADSTS50xxx',
    'AADSTS90xxxx',
    'AADSTS50xxxx',
  ]);
  expect([NaN, 12, -70000, 1.5, 1e12].map(aadstsFamilyOf)).toEqual([undefined, undefined, undefined, undefined, undefined]);
});

test("an error's type: our code, MSAL's errorCode, the class name, or _OTHER for free text", () => {
  expect(errorTypeOf(new LockTimeoutError('x'))).toBe('ERR_LOCK_TIMEOUT');
  expect(errorTypeOf(new InvalidArgumentError('ERR_INVALID_ARG_TYPE', 'x'))).toBe('ERR_INVALID_ARG_TYPE');
  expect(errorTypeOf(new ServerError('invalid_grant', 'AADSTS70000: ...'))).toBe('invalid_grant');
  expect(errorTypeOf(new RangeError('x'))).toBe('RangeError');
  expect(errorTypeOf({ errorCode: 'a token eyJ... in free text', name: 'not a name either' })).toBe('_OTHER');
  expect(errorTypeOf(undefined)).toBe('_OTHER');
  expect([oauthErrorOf('invalid_grant'), oauthErrorOf('Bearer eyJ...'), oauthErrorOf(undefined), oauthErrorOf(42)]).toEqual([
    'invalid_grant',
    '_OTHER',
    undefined,
    '_OTHER',
  ]);
});

test('a traceparent is read exactly: version 00, lower-case hex, non-zero ids', () => {
  expect(parseTraceparent(TRACEPARENT)).toEqual({
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
  });
  expect(traceparentOf(parseTraceparent(TRACEPARENT)!)).toBe(TRACEPARENT);
  for (const bad of [
    TRACEPARENT.toUpperCase(),
    `${TRACEPARENT} `,
    `01${TRACEPARENT.slice(2)}`,
    '00-00000000000000000000000000000000-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01',
    `${TRACEPARENT}\n00-x`,
    42,
  ])
    expect(parseTraceparent(bad)).toBeUndefined();
});

test("a flight outcome keeps a holder's traceparent only when it is one exactly (the MAC covers it)", () => {
  const mac = new CodeHasher('a secret of the app, for the records');
  const key = 'flight:abc:v1:0';
  const roundTrip = (outcome: unknown): FlightOutcome => openFlightOutcome(sealFlightOutcome(outcome as FlightOutcome, mac, key), mac, key);
  expect(roundTrip({ state: 'ok', shape: 's', trace: TRACEPARENT })).toEqual({ state: 'ok', shape: 's', trace: TRACEPARENT });
  expect(roundTrip({ state: 'ok', shape: 's' })).toEqual({ state: 'ok', shape: 's' });
  for (const trace of [TRACEPARENT.toUpperCase(), `${TRACEPARENT}-extra`, '00-00000000000000000000000000000000-b7ad6b7169203331-01', 7])
    expect(roundTrip({ state: 'ok', shape: 's', trace })).toEqual({ state: 'ok', shape: 's' });
  const failed = roundTrip({
    state: 'failed',
    error: { kind: 'server', errorCode: 'invalid_grant', subError: '', errorNo: '70000', errorMessage: 'm' },
    trace: TRACEPARENT,
  });
  expect(failed).toMatchObject({ state: 'failed', trace: TRACEPARENT });
  // Another round's record (a MAC bound to another key) is no outcome at all, trace or not.
  expect(openFlightOutcome(sealFlightOutcome({ state: 'ok', shape: 's', trace: TRACEPARENT }, mac, key), mac, 'flight:abc:v1:1')).toEqual({
    state: 'abandoned',
  });
});
