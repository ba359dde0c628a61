// Signs the site's signed-in visitor into Kustomer chat with a token from the token API.
// Paste this module into your site; it needs `window.Kustomer` (the chat SDK) started.
//
//   const chatLogin = createChatLogin({ tokenApiUrl, getAccessToken, onReauthenticate, describe });
//   await chatLogin.signIn();   // after Kustomer.start, when the visitor is signed in to your site
//   await chatLogin.signOut();  // when the visitor signs out of your site
//
// `describe` is optional: ({ externalId, email }) => the options of Kustomer.describeCustomer
// ({ attributes: { sharedEmails, sharedPhones, ... }, customAttributes: { ... } }), or null to
// share nothing; it may be async. It runs right after a login that succeeded, as Kustomer's docs
// call describeCustomer in login's callback, and never when the login failed or was not needed
// (the visitor was already signed in to chat). Its failure is logged; the visitor stays signed in.

const MAX_ATTEMPTS = 4;
const EXPIRY_SKEW_SECONDS = 30; // clocks differ a little, and the request takes time to arrive

export function createChatLogin({ tokenApiUrl, getAccessToken, onReauthenticate, describe, log = console }) {
  function signInAgain() {
    onReauthenticate();
    return new Error("the visitor must sign in again");
  }

  // A fresh token right before each login: Kustomer refuses one whose iat is over 15 minutes
  // old, so nothing is cached (and never past the answer's expiresAt).
  async function fetchLoginToken() {
    for (let attempt = 1; ; attempt += 1) {
      const accessToken = await getAccessToken();
      // API Gateway refuses an expired token with a 401 that may lack CORS headers, which a page
      // cannot read: an expired token is treated as that 401 without calling.
      if (!accessToken || hasExpired(accessToken)) throw signInAgain();
      let answer;
      try {
        answer = await fetch(`${tokenApiUrl}/token`, {
          method: "POST",
          headers: { Authorization: `Bearer ${accessToken}` },
          cache: "no-store",
        });
      } catch (networkError) {
        // An unreadable answer for a token that has just expired is that 401, not the network.
        if (hasExpired(accessToken)) throw signInAgain();
        if (attempt >= MAX_ATTEMPTS) throw networkError;
        await sleep(backoffSeconds(attempt));
        continue;
      }
      if (answer.ok) return answer.json();
      if (answer.status === 401) throw signInAgain(); // the access token is missing, expired or refused
      if (answer.status === 503 && attempt < MAX_ATTEMPTS) {
        const retryAfter = Number(answer.headers.get("Retry-After"));
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : backoffSeconds(attempt));
        continue;
      }
      const problem = await answer.json().catch(() => ({}));
      throw new Error(`token API answered ${answer.status} ${problem.error ?? ""}`.trim());
    }
  }

  function call(method, ...args) {
    return new Promise((resolve, reject) =>
      window.Kustomer[method](...args, (response, error) => (error ? reject(error) : resolve(response))),
    );
  }

  async function signIn() {
    const token = await fetchLoginToken();
    // Kustomer uses the email when a token carries both; ask isLoggedIn about the same one.
    const identifier = token.email !== undefined ? { email: token.email } : { externalId: token.externalId };
    try {
      if (await call("isLoggedIn", identifier)) return "already-signed-in";
      await call("login", { jwtToken: token.jwtToken });
    } catch (sdkError) {
      // Chat stays usable anonymously; the visitor can still talk to you.
      log.warn("Kustomer chat login failed; chat stays anonymous", sdkError);
      return "anonymous";
    }
    if (describe) await describeCustomer(identityOf(token));
    return "signed-in";
  }

  // Only after a login that succeeded, so the attributes land on the signed-in customer.
  async function describeCustomer(identity) {
    try {
      const options = await describe(identity);
      if (options) await call("describeCustomer", options);
    } catch (error) {
      log.warn("Kustomer describeCustomer failed; the visitor stays signed in", error);
    }
  }

  async function signOut() {
    await call("logout").catch((sdkError) => log.warn("Kustomer chat logout failed", sdkError));
  }

  return { signIn, signOut };
}

// The identifiers the token carries, never the token itself.
function identityOf(token) {
  const identity = {};
  if (token.externalId !== undefined) identity.externalId = token.externalId;
  if (token.email !== undefined) identity.email = token.email;
  return identity;
}

// True when the JWT's exp (payload read without verification: API Gateway verifies it) has
// passed or is about to; false for a token that is not a JWT or has no exp.
function hasExpired(accessToken) {
  const payload = accessToken.split(".")[1];
  if (!payload) return false;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
    const { exp } = JSON.parse(new TextDecoder().decode(bytes));
    return typeof exp === "number" && exp <= Date.now() / 1000 + EXPIRY_SKEW_SECONDS;
  } catch {
    return false;
  }
}

function backoffSeconds(attempt) {
  return Math.min(8, 0.5 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
