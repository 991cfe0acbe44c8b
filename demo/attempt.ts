// One callback hitting one app instance: redeem the code, time it, and classify what came back.
import type { AuthenticationResult, ConfidentialClientApplication } from '@azure/msal-node';
import type { DistributedAuthorizationCodeRequest, DistributedClientApplication } from '../src';
import { isCodeAlreadyRedeemed } from '../src/redeem/server-errors';

export type Side = 'ours' | 'plain';

export interface AttemptResult {
  ok: boolean;
  latencyMs: number;
  homeAccountId?: string;
  /** AADSTS54005 reached the app. */
  codeAlreadyRedeemed: boolean;
  /** The error's code (ours) or MSAL errorCode, when not ok. */
  error?: string;
}

export async function attempt(
  app: DistributedClientApplication | ConfidentialClientApplication,
  request: DistributedAuthorizationCodeRequest,
): Promise<AttemptResult> {
  const startedAt = performance.now();
  try {
    const { binding: _binding, ...msalRequest } = request;
    const isOurs = 'redemptionsInFlight' in app;
    const result: AuthenticationResult = isOurs ? await app.acquireTokenByCode(request) : await app.acquireTokenByCode(msalRequest);
    return {
      ok: true,
      latencyMs: performance.now() - startedAt,
      codeAlreadyRedeemed: false,
      ...(result.account && { homeAccountId: result.account.homeAccountId }),
    };
  } catch (error) {
    const code = (error as { code?: string; errorCode?: string }).code ?? (error as { errorCode?: string }).errorCode ?? 'error';
    return { ok: false, latencyMs: performance.now() - startedAt, codeAlreadyRedeemed: isCodeAlreadyRedeemed(error), error: code };
  }
}
