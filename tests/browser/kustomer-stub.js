// Stands in for Kustomer's chat SDK (https://cdn.kustomerapp.com/chat-web/widget.js), which
// this machine cannot reach. It follows the documented signatures, records every call, and
// fires kustomerLoaded like the real loader. window.__kustomerStubOptions (set by run.mjs from
// KUSTOMER_STUB) makes it fail login or describeCustomer, or start with a customer signed in.
(() => {
  const calls = [];
  const stubOptions = window.__kustomerStubOptions ?? {};
  let loggedInAs = stubOptions.loggedInAs ?? null;
  const record = (name, args) => {
    calls.push({ name, args, at: performance.now() });
    if (window.__recordKustomerCall) window.__recordKustomerCall(name, JSON.stringify(args));
  };
  window.Kustomer = {
    start(options, callback) {
      record("start", [options]);
      setTimeout(() => callback && callback(), 10);
    },
    isLoggedIn(options, callback) {
      record("isLoggedIn", [options]);
      const match = loggedInAs && Object.entries(options).every(([key, value]) => loggedInAs[key] === value);
      setTimeout(() => callback(Boolean(match), undefined), 10);
    },
    login(loginOptions, callback) {
      record("login", [loginOptions]);
      if (typeof loginOptions?.jwtToken !== "string" || stubOptions.loginFails) {
        setTimeout(() => callback && callback(undefined, new Error("login refused")), 10);
        return;
      }
      const payload = JSON.parse(atob(loginOptions.jwtToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      loggedInAs = { externalId: payload.externalId, email: payload.email };
      setTimeout(() => callback && callback({ identified: true }, undefined), 10);
    },
    describeCustomer(describeOptions, callback) {
      record("describeCustomer", [describeOptions]);
      const error = !loggedInAs ? new Error("no customer is logged in") : stubOptions.describeFails ? new Error("refused") : undefined;
      setTimeout(() => callback && callback(error ? undefined : {}, error), 10);
    },
    logout(callback) {
      record("logout", []);
      loggedInAs = null;
      setTimeout(() => callback && callback(undefined, undefined), 10);
    },
  };
  window.__kustomerStub = { calls };
  window.dispatchEvent(new Event("kustomerLoaded"));
})();
