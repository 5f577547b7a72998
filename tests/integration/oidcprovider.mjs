// A certified OpenID provider nobody here wrote (panva's oidc-provider, pinned in package.json), configured
// as strictly as real deployments are, for tests/integration/realprovider.py:
//   - PKCE (S256) required; the client authenticates with client_secret_basic only;
//   - the `groups` claim only with the `groups` scope (the claims of a scope the hub did not ask for are not sent);
//   - refresh tokens only for `offline_access` requested with prompt=consent (the library's default rule);
//   - RP-initiated logout with its confirmation page, post_logout_redirect_uri registered.
// Usage: node oidcprovider.mjs '<json>' with {port, clientId, clientSecret, redirectUris, postLogoutUris,
// accessTokenSeconds, accounts: {login: {preferred_username, name, email, groups}}}. The login form accepts
// any password for a listed login (devInteractions); `sub` is the login.
import Provider from 'oidc-provider';

const conf = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${conf.port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: conf.clientId,
    client_secret: conf.clientSecret,
    redirect_uris: conf.redirectUris,
    post_logout_redirect_uris: conf.postLogoutUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  clockTolerance: 0, // tokens expire when they say (the default tolerates 15 s more)
  ttl: {
    AccessToken: conf.accessTokenSeconds || 3600,
    IdToken: 3600,
    Session: 3600,
    Grant: 3600,
    Interaction: 600,
    RefreshToken: 3600,
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const account = conf.accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
provider.proxy = false;
// One line per refused request, so a failing test shows why the provider said no.
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('authorization.error', (ctx, err) => console.error('authorization.error', err.error, err.error_description));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.error, err.error_description));
provider.on('userinfo.error', (ctx, err) => console.error('userinfo.error', err.error, err.error_description));

provider.listen(conf.port, '127.0.0.1', () => console.log(`listening ${issuer}`));
