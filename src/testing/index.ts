// Entry point `msal-distributed-cache/testing`: a fake Entra ID for tests (ours and our users').
export { FakeEntraId, DEFAULT_CLIENT, DEFAULT_USER } from './fake-entra-id';
export type { FakeClient, FakeEntraIdOptions, FakeFailureKind, FakeGrantType, FakeUser, TokenRequestRecord } from './fake-entra-id';
export { AADSTS, entraErrorResponse } from './entra-errors';
export type { AadstsErrorName, EntraErrorBody } from './entra-errors';
export { createTestCertificateAuthority, issueLoopbackServerCertificate } from './certificates';
export type { CertificateAndKey } from './certificates';
export { trustCertificateAuthority } from './trust';
export { RedisServer, findFreePort } from './redis-server';
export { RedisCluster } from './redis-cluster';
export { PostgresServer } from './postgres-server';
