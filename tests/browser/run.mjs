// Opens the example page in headless Chromium with the Kustomer SDK stubbed at its CDN URL,
// waits until the page reports what it did, and prints the ordered events as JSON.
// Usage: node run.mjs <pageUrl> <tokenApiUrl> <screenshotPath> <waitForStates comma-separated>
//
// With HOLD_ON_STATUS=<status>, the page runs on Playwright's clock: when the token API first
// answers that status, the page's time stops, the runner prints "HELD" on a line of its own and
// waits for a line on stdin (the test changes the world meanwhile), then runs the page's clock
// for the answer's Retry-After and lets time flow again. The page's own record of its token calls
// (times on the page's clock) comes back as `tokenCalls`.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [pageUrl, tokenApiUrl, screenshotPath, states] = process.argv.slice(2);
const stub = readFileSync(new URL("./kustomer-stub.js", import.meta.url), "utf8");
const events = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const context = await browser.newContext();
  // How the stubbed SDK behaves (tests/browser/kustomer-stub.js): {} is Kustomer working normally.
  await context.addInitScript((options) => {
    window.__kustomerStubOptions = JSON.parse(options);
  }, process.env.KUSTOMER_STUB ?? "{}");
  await context.route("https://cdn.kustomerapp.com/**", (route) =>
    route.fulfill({ status: 200, contentType: "application/javascript", body: stub }),
  );
  await context.exposeFunction("__recordKustomerCall", (name, args) => {
    events.push({ kind: "sdk", name, args: JSON.parse(args) });
  });
  // The page's own record of its token calls, timed on the page's clock.
  await context.addInitScript((apiUrl) => {
    const realFetch = window.fetch.bind(window);
    window.__tokenCalls = [];
    window.fetch = async (input, init) => {
      const url = typeof input === "string" ? input : input.url;
      if (!url.startsWith(apiUrl)) return realFetch(input, init);
      const call = { sentAt: Date.now(), status: null, answeredAt: null };
      window.__tokenCalls.push(call);
      const answer = await realFetch(input, init);
      call.status = answer.status;
      call.answeredAt = Date.now();
      return answer;
    };
  }, tokenApiUrl);
  const holdOn = process.env.HOLD_ON_STATUS ? Number(process.env.HOLD_ON_STATUS) : null;
  const page = await context.newPage();
  if (holdOn !== null) await page.clock.install();
  let holding = null;
  page.on("console", (message) => events.push({ kind: "console", type: message.type(), text: message.text() }));
  page.on("request", (request) => {
    if (request.url().startsWith(tokenApiUrl) && request.method() === "POST") {
      events.push({ kind: "fetch", url: request.url(), at: Date.now() });
    }
  });
  const bodies = [];
  page.on("response", (response) => {
    if (response.url().startsWith(tokenApiUrl) && response.request().method() === "POST") {
      // Recorded at once, so the order of events is the order things happened; the body follows.
      const event = { kind: "answer", status: response.status(), retryAfter: response.headers()["retry-after"] ?? null, body: null, at: Date.now() };
      events.push(event);
      if (holdOn !== null && holding === null && event.status === holdOn) {
        holding = hold(Number(event.retryAfter ?? 0));
      }
      // Playwright can wait forever for some bodies (seen for 503s): give each two seconds.
      const timeout = new Promise((resolve) => setTimeout(resolve, 2000));
      bodies.push(Promise.race([response.json().then((body) => (event.body = body), () => {}), timeout]));
    }
  });
  async function hold(retryAfterSeconds) {
    // A moment ahead of the page's clock: pausing at the very time read can already be in the past by
    // the time Playwright gets it ("Cannot fast-forward to the past"). Far short of any Retry-After.
    await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 250);
    events.push({ kind: "held" });
    process.stdout.write("HELD\n");
    const lines = createInterface({ input: process.stdin });
    await lines[Symbol.asyncIterator]().next();
    lines.close();
    events.push({ kind: "resumed" });
    await page.clock.runFor(retryAfterSeconds * 1000);
    await page.clock.resume();
  }
  await page.goto(pageUrl);
  const wanted = states.split(",");
  try {
    await page.waitForFunction((list) => list.includes(document.body.dataset.chatLogin), wanted, {
      timeout: 45_000,
    });
  } catch (error) {
    process.stderr.write(`page never reached ${states}: ${JSON.stringify(events)}\n`);
    throw error;
  }
  const state = await page.evaluate(() => document.body.dataset.chatLogin);
  const tokenCalls = await page.evaluate(() => window.__tokenCalls);
  await holding;
  await Promise.all(bodies);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  process.stdout.write(JSON.stringify({ state, events, tokenCalls }) + "\n");
} finally {
  await browser.close();
}
