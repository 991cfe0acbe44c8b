// Barrel only: the fake Entra ID as the testing entry point exports it (the class, its defaults and its public types).
export { FakeEntraId } from './fake-entra-id';
export { DEFAULT_CLIENT, DEFAULT_USER } from './types';
export type { FakeClient, FakeEntraIdOptions, FakeFailureKind, FakeGrantType, FakeUser, TokenRequestRecord } from './types';
