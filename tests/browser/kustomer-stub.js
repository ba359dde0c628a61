// Stands in for Kustomer's chat SDK (https://cdn.kustomerapp.com/chat-web/widget.js), which
// this machine cannot reach. It follows the documented signatures, records every call, and
// fires kustomerLoaded like the real loader.
(() => {
  const calls = [];
  let loggedInAs = null;
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
    login(options, callback) {
      record("login", [options]);
      if (typeof options?.jwtToken !== "string") {
        setTimeout(() => callback && callback(undefined, new Error("jwtToken is required")), 10);
        return;
      }
      const payload = JSON.parse(atob(options.jwtToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      loggedInAs = { externalId: payload.externalId, email: payload.email };
      setTimeout(() => callback && callback({ identified: true }, undefined), 10);
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
