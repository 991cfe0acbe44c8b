/**
 * Test helpers, for this library's tests and for yours: {@link FakeEntraId}, a fake Microsoft Entra
 * ID over HTTPS on loopback that the real `@azure/msal-node` talks to; a throwaway test certificate
 * authority; and real `redis-server`, Redis Cluster and PostgreSQL processes
 * ({@link RedisServer}, {@link RedisCluster}, {@link PostgresServer}) to kill, pause and restart, and a
 * primary with a replica behind one endpoint ({@link RedisReplicaPair}, {@link TcpProxy}) to fail over;
 * and {@link lockStoreContract}, the tests a `LockStore` of your own should pass. Not for production use.
 *
 * @module msal-distributed-cache/testing
 */
// Barrel only: the public API of the testing entry point is exactly what is exported here.
export { FakeEntraId, DEFAULT_CLIENT, DEFAULT_USER } from './fake-entra-id';
export type { FakeClient, FakeEntraIdOptions, FakeFailureKind, FakeGrantType, FakeUser, TokenRequestRecord } from './fake-entra-id';
export { AADSTS, entraErrorResponse } from './entra-errors';
export type { AadstsErrorName, EntraErrorBody } from './entra-errors';
export { createTestCertificateAuthority, issueLoopbackServerCertificate } from './certificates';
export type { CertificateAndKey } from './certificates';
export { trustCertificateAuthority } from './trust';
export { RedisServer, findFreePort } from './redis-server';
export { RedisCluster } from './redis-cluster';
export { RedisReplicaPair } from './redis-replica-pair';
export { TcpProxy } from './tcp-proxy';
export { PostgresServer } from './postgres-server';
export { lockStoreContract } from './lock-store-contract';
export type { LockStoreContractFunctions, LockStoreContractOptions, LockStoreInstances } from './lock-store-contract';
