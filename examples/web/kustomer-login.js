// Signs the site's signed-in visitor into Kustomer chat with a token from the token API.
// Paste this module into your site; it needs `window.Kustomer` (the chat SDK) started.
//
//   const chatLogin = createChatLogin({ tokenApiUrl, getAccessToken, onReauthenticate });
//   await chatLogin.signIn();   // after Kustomer.start, when the visitor is signed in to your site
//   await chatLogin.signOut();  // when the visitor signs out of your site

const MAX_ATTEMPTS = 4;

export function createChatLogin({ tokenApiUrl, getAccessToken, onReauthenticate, log = console }) {
  // A fresh token right before each login: Kustomer refuses one whose iat is over 15 minutes
  // old, so nothing is cached (and never past the answer's expiresAt).
  async function fetchLoginToken() {
    for (let attempt = 1; ; attempt += 1) {
      let answer;
      try {
        answer = await fetch(`${tokenApiUrl}/token`, {
          method: "POST",
          headers: { Authorization: `Bearer ${await getAccessToken()}` },
          cache: "no-store",
        });
      } catch (networkError) {
        if (attempt >= MAX_ATTEMPTS) throw networkError;
        await sleep(backoffSeconds(attempt));
        continue;
      }
      if (answer.ok) return answer.json();
      if (answer.status === 401) {
        onReauthenticate(); // the site's access token is missing, expired or refused
        throw new Error("the visitor must sign in again");
      }
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
      return "signed-in";
    } catch (sdkError) {
      // Chat stays usable anonymously; the visitor can still talk to you.
      log.warn("Kustomer chat login failed; chat stays anonymous", sdkError);
      return "anonymous";
    }
  }

  async function signOut() {
    await call("logout").catch((sdkError) => log.warn("Kustomer chat logout failed", sdkError));
  }

  return { signIn, signOut };
}

function backoffSeconds(attempt) {
  return Math.min(8, 0.5 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
