/**
 * Token requests, seen at MSAL's network client: every POST an MSAL client of this library makes
 * goes to the token endpoint (discovery and metadata are GETs). Each becomes a `msal_dc
 * token_request` span (kind CLIENT, a child of the active context) and counts in
 * `msal_dc.token_requests` and `msal_dc.token_request.duration`. Read from the request: its
 * `grant_type` only; from the answer: its status, the OAuth `error` and the first of Entra ID's
 * `error_codes`. Never the body, the URL's path or query, or a header.
 */
import type { INetworkModule, NetworkRequestOptions } from '@azure/msal-node';
import { ATTR, aadstsFamilyOf, oauthErrorOf } from './names';
import { secondsSince } from './telemetry';
import type { Telemetry } from './telemetry';

/** The grants of MSAL's confidential client, by `grant_type` as sent. */
const GRANTS: Readonly<Record<string, string>> = {
  authorization_code: 'authorization_code',
  refresh_token: 'refresh_token',
  client_credentials: 'client_credentials',
  'urn:ietf:params:oauth:grant-type:jwt-bearer': 'on_behalf_of',
};

/** `msal_dc.grant_type` of a form body: one of {@link GRANTS}, the raw value when it looks like one, else `_OTHER`. */
export function grantTypeOf(body: unknown): string {
  if (typeof body !== 'string') return '_OTHER';
  const raw = /(?:^|&)grant_type=([^&]*)/.exec(body)?.[1];
  if (raw === undefined) return '_OTHER';
  let value: string;
  try {
    value = decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return '_OTHER';
  }
  return GRANTS[value] ?? (/^[A-Za-z0-9_.:-]{1,100}$/.test(value) ? value : '_OTHER');
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

/** `inner`, with each POST traced and counted by `telemetry`. */
export function tracedNetworkClient(inner: INetworkModule, telemetry: Telemetry): INetworkModule {
  return {
    sendGetRequestAsync: (url, options, timeout) => inner.sendGetRequestAsync(url, options, timeout),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => tokenRequest<T>(telemetry, inner, url, options),
  };
}

async function tokenRequest<T>(telemetry: Telemetry, inner: INetworkModule, url: string, options?: NetworkRequestOptions) {
  const { tracer, instruments, api } = telemetry;
  const grant = grantTypeOf(options?.body);
  const span = tracer.startSpan('msal_dc token_request', telemetry.clientSpan);
  const started = performance.now();
  if (span.isRecording()) {
    const host = hostOf(url);
    span.setAttribute(ATTR.grantType, grant);
    if (host !== undefined) span.setAttribute(ATTR.serverAddress, host);
    telemetry.reportTokenRequest(api.context.active(), span);
  }
  try {
    const response = await inner.sendPostRequestAsync<T>(url, options);
    try {
      const attrs = answered(grant, response.status, response.body);
      instruments.tokenRequests.add(1, attrs);
      instruments.tokenRequestDuration.record(secondsSince(started), { [ATTR.grantType]: grant, [ATTR.result]: attrs[ATTR.result]! });
      if (span.isRecording()) {
        span.setAttributes(attrs);
        if (attrs[ATTR.result] === 'error')
          span.setStatus({ code: api.SpanStatusCode.ERROR, message: String(attrs[ATTR.errorType] ?? attrs[ATTR.statusCode]) });
      }
      span.end();
    } catch {
      // telemetry never breaks a request
    }
    return response;
  } catch (error) {
    try {
      const attrs = { [ATTR.grantType]: grant, [ATTR.result]: 'no_response' };
      instruments.tokenRequests.add(1, attrs);
      instruments.tokenRequestDuration.record(secondsSince(started), attrs);
      if (span.isRecording()) {
        span.setAttribute(ATTR.result, 'no_response');
        telemetry.failSpan(span, error);
      }
      span.end();
    } catch {
      // telemetry never breaks a request
    }
    throw error;
  }
}

/** The attributes of an answered token request: status, result, and on an error its OAuth `error` and AADSTS code. */
function answered(grant: string, status: number, body: unknown): Record<string, string | number> {
  const { error, error_codes: codes } = (typeof body === 'object' && body !== null ? body : {}) as {
    error?: unknown;
    error_codes?: unknown;
  };
  const oauthError = oauthErrorOf(error);
  const ok = status >= 200 && status < 300 && oauthError === undefined;
  const attrs: Record<string, string | number> = { [ATTR.grantType]: grant, [ATTR.result]: ok ? 'success' : 'error' };
  if (Number.isSafeInteger(status)) attrs[ATTR.statusCode] = status;
  if (ok) return attrs;
  attrs[ATTR.errorType] = oauthError ?? String(status); // as HTTP's semantic conventions: the status without an OAuth error
  const first = Array.isArray(codes) ? Number(codes[0]) : NaN;
  const family = aadstsFamilyOf(first);
  if (family !== undefined) {
    attrs[ATTR.aadstsFamily] = family;
    attrs[ATTR.aadstsCode] = first;
  }
  return attrs;
}
