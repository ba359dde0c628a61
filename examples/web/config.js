// The one place to configure this page. None of these values is a secret:
// - tokenApiUrl: the stack's ApiUrl output.
// - kustomerWidgetKey: Kustomer's chat (web SDK) API key, with ONLY the org.tracking role.
//   It is public by design. The admin API key (org.admin + org.user) that reads the
//   signing secret never reaches a browser: it lives in Secrets Manager, used by the
//   refresher alone.
// - kustomerBrandId: the brand whose chat widget to show.
// - devAccessToken: only for `make serve`; a real site gets the visitor's access token
//   from its own sign-in (see getAccessToken in main.js).
export const config = {
  tokenApiUrl: "https://REPLACE.execute-api.us-east-1.amazonaws.com",
  kustomerWidgetKey: "REPLACE_WITH_ORG_TRACKING_KEY",
  kustomerBrandId: "REPLACE_WITH_BRAND_ID",
  devAccessToken: null,
};
