// A real OpenID Connect provider for Careline's sign-in tests and demo: the
// certified `oidc-provider` package with its development sign-in page
// (any username becomes the subject; any password). Never for real people.
//
//   node oidc-provider.mjs <port> <client_id> <client_secret> <redirect_uri>
//
// Prints "ready <issuer>" on stdout once it listens, and runs until killed.
import Provider from "oidc-provider";

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error("usage: node oidc-provider.mjs <port> <client_id> <client_secret> <redirect_uri>");
  process.exit(2);
}
if (!clientSecret) {
  console.error("oidc-provider.mjs: the client secret is empty (was its file read from the right place?)");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true, methods: ["S256"] },
  // The subject's name and address, as a hospital's provider would give
  // them: the username typed, and an address made of it.
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: () => ({
      sub,
      name: sub.replace(/[._-]/g, " ").replace(/\b\w/g, (c) => c.toUpperCase()),
      email: `${sub}@idp.example`,
      email_verified: true,
    }),
  }),
  // The name and address in the ID token itself, where the web service reads them.
  conformIdTokenClaims: false,
  claims: { openid: ["sub"], profile: ["name"], email: ["email", "email_verified"] },
  features: { devInteractions: { enabled: true } },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
});
provider.proxy = false;

provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
