import * as tables from '../db/schema';

/** The oauth-provider plugin's models, keyed by model name for the drizzle adapter. */
export const OIDC_MODELS = {
  oauthClient: tables.oauthClient,
  oauthResource: tables.oauthResource,
  oauthClientResource: tables.oauthClientResource,
  oauthRefreshToken: tables.oauthRefreshToken,
  oauthAccessToken: tables.oauthAccessToken,
  oauthConsent: tables.oauthConsent,
  oauthClientAssertion: tables.oauthClientAssertion,
};
