// Cache documents for tests that write partitions directly (without MSAL).

/** MSAL's serialized cache holding one app access token (client credentials) whose secret is `secret`. */
export const appTokenJson = (secret: string): string =>
  JSON.stringify({
    AccessToken: {
      [`-login.example.test-accesstoken-client--scope--`]: {
        home_account_id: '',
        environment: 'login.example.test',
        credential_type: 'AccessToken',
        client_id: 'client',
        secret,
        realm: 'tenant',
        target: 'scope',
        cached_at: '1700000000',
        expires_on: '1700003600',
      },
    },
  });
