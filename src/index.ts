// Public entry point `msal-distributed-cache` (barrel only).
export * from './errors';
