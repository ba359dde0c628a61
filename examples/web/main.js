import { config } from "./config.js";
import { createChatLogin } from "./kustomer-login.js";

const status = document.querySelector("#status");
function show(state, text) {
  document.body.dataset.chatLogin = state; // what the page did, for people and for the browser test
  status.textContent = text;
}

// A real site returns the visitor's current access token from its own sign-in here
// (Cognito: (await fetchAuthSession()).tokens.accessToken.toString(); Auth0: getAccessTokenSilently()).
async function getAccessToken() {
  // ?accessToken= and devAccessToken are for trying this page with `make serve` only.
  return new URLSearchParams(location.search).get("accessToken") ?? config.devAccessToken;
}

// Optional: what the site knows about the visitor, shared with Kustomer right after a login that
// succeeded (Kustomer.describeCustomer). A real site reads its own profile of the visitor here; this
// page shares the email claim of its access token, read without verification (it is the site's own).
async function describeVisitor() {
  const email = claimsOf(await getAccessToken())?.email;
  return typeof email === "string" ? { attributes: { sharedEmails: [email] } } : null;
}

function claimsOf(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

const chatLogin = createChatLogin({
  tokenApiUrl: config.tokenApiUrl,
  getAccessToken,
  onReauthenticate: () => show("reauthenticate", "Please sign in again to chat as yourself."),
  describe: describeVisitor,
});

// Kustomer's documented loader: the SDK fires kustomerLoaded when it is ready.
window.addEventListener("kustomerLoaded", () => {
  window.Kustomer.start({ brandId: config.kustomerBrandId }, async () => {
    show("starting", "Chat started; signing you in…");
    try {
      const outcome = await chatLogin.signIn();
      show(outcome, outcome === "anonymous" ? "Chat is open (not signed in)." : "You are signed in to chat.");
    } catch (error) {
      if (document.body.dataset.chatLogin !== "reauthenticate") {
        show("anonymous", "Chat is open (not signed in).");
        console.warn(error);
      }
    }
  });
});

document.querySelector("#sign-out").addEventListener("click", async () => {
  await chatLogin.signOut(); // call when the visitor signs out of your site
  show("signed-out", "Signed out of chat.");
});

const sdk = document.createElement("script");
sdk.src = "https://cdn.kustomerapp.com/chat-web/widget.js";
sdk.dataset.kustomerApiKey = config.kustomerWidgetKey;
document.head.append(sdk);
