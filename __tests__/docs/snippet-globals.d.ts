// The free variables of the documentation's code examples, with the types they have in a real app.
// __tests__/docs/snippets.ts imports every name exported here into each ```ts block that does not
// declare or import that name itself (a module, not ambient globals: the rest of the repository never
// sees these names). Add a name here only when several examples use it as "your app's ..." value.
import type { Configuration } from '@azure/msal-node';
import type { Express, Request, Response } from 'express';
import type Keyv from 'keyv';
import type {} from 'express-session';
import type { DistributedClientApplication, DistributedTokenCache, KeyRing } from 'msal-distributed-cache';

// Third-party names the examples use without importing them.
export { ConfidentialClientApplication } from '@azure/msal-node';
export { default as Keyv } from 'keyv';
export { default as KeyvRedis } from '@keyv/redis';

/** The app registration's application (client) id. */
export declare const clientId: string;
/** A client secret of the app registration. */
export declare const clientSecret: string;
/** The directory (tenant) id. */
export declare const tenantId: string;
/** `https://login.microsoftonline.com/<tenantId>`. */
export declare const authority: string;
/** The `auth` section of an MSAL configuration. */
export declare const auth: Configuration['auth'];
/** An MSAL configuration. */
export declare const msalConfig: Configuration;
/** The authorization code from the OAuth callback's query string. */
export declare const code: string;
/** The redirect URI registered for the app. */
export declare const redirectUri: string;
/** The PKCE verifier of the sign-in, kept in the session since /authorize. */
export declare const codeVerifier: string;
/** An account's `homeAccountId` (`<oid>.<tenantId>`). */
export declare const homeAccountId: string;
/** A Redis URL, such as `redis://localhost:6379`. */
export declare const url: string;
/** The token store. */
export declare const store: Keyv;
/** The app's shared token cache. */
export declare const cache: DistributedTokenCache;
/** The token cache's key ring (encryption at rest). */
export declare const keyRing: KeyRing;
/** The app's MSAL client (docs/express.md calls it `msal`). */
export declare const msal: DistributedClientApplication;
/** The Express app. */
export declare const app: Express;
/** An Express request (with express-session). */
export declare const req: Request;
/** An Express response. */
export declare const res: Response;
/** The request's session (express-session). */
export declare const session: Request['session'];
