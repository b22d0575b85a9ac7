// The web page in a real browser, two users in two browser contexts. Run by
// scripts/browser-test; each part prints a line when it passed:
//   chat       both register, Alice starts a chat by username, messages go both ways
//              (pending → ✓ on the ack, ✓✓ on the read receipt, the unread badge);
//   reconnect  Alice's socket drops and her reconnects are held: Bob writes meanwhile, Alice
//              types while offline; released, she resends (✓) and syncs what she missed;
//   history    Bob reloads the page (the session survives), opens the chat, sees the newest
//              page and scrolls up for older messages (before_seq);
//   groups     Alice creates a group with Bob; both write in it; Bob leaves, joins back by id
//              and gets what is written after;
//   world      both in the world channel, Alice's message reaches Bob live;
//   headers    the page came with its Content-Security-Policy (and the other security
//              headers), the browser reported no violation of it, and every WebSocket the page
//              opened carried a single-use `ticket=`, never the access token.
// Screenshots of both pages after each part go to $GOCHAT_SHOTS.
import { chromium } from "playwright-core";

const base = process.env.GOCHAT_URL;
const shots = process.env.GOCHAT_SHOTS;
const patience = { timeout: 20000 };
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const pages = [];
// Every WebSocket URL the pages opened, and any Content-Security-Policy violation reported.
const sockets = [];
const violations = [];
let pageHeaders = null;
// Alice's sockets pass through this gate: `held` makes new connections wait until released.
const gate = { held: false, release: null, routes: [] };

function passed(part) {
  console.log(`browser: ${part} passed`);
  return Promise.all(pages.map(([name, page]) =>
    page.screenshot({ path: `${shots}/${part}-${name}.png` })));
}

async function send(page, text) {
  await page.fill("#text", text);
  await page.click("#send");
}

function mine(page, text) {
  return page.locator("#messages li.mine", { hasText: text });
}

function theirs(page, text) {
  return page.locator("#messages li:not(.mine)", { hasText: text });
}

function conversation(page, name) {
  return page.locator("#conversations li", { hasText: name });
}

try {
  const run = Date.now() % 1000000;
  const [alice, bob] = [`alice${run}`, `bob${run}`];

  async function signUp(name, gated) {
    const context = await browser.newContext();
    if (gated) {
      await context.routeWebSocket(/\/ws\?/, async (ws) => {
        gate.routes.push(ws);
        sockets.push(ws.url());
        if (gate.held) await new Promise((resolve) => { gate.release = resolve; });
        ws.connectToServer();
      });
    }
    const page = await context.newPage();
    page.on("pageerror", (e) => { throw e; });
    page.on("console", (m) => {
      console.error(`${name} console: ${m.text()}`);
      if (/Content Security Policy/i.test(m.text())) violations.push(`${name}: ${m.text()}`);
    });
    page.on("websocket", (ws) => sockets.push(ws.url()));
    pages.push([name, page]);
    const response = await page.goto(base);
    pageHeaders = pageHeaders || response.headers();
    await page.fill("#username", name);
    await page.fill("#password", "browser password");
    await page.click("#register");
    await page.locator("#status.online").waitFor(patience);
    return page;
  }
  const a = await signUp(alice, true);
  const b = await signUp(bob, false);

  // chat: Alice starts the chat by username and writes; pending, then acked.
  await a.fill("#peer", bob);
  await a.click("#new-chat button");
  await a.locator("#composer").waitFor({ state: "visible", ...patience });
  await a.locator("#title", { hasText: bob }).waitFor(patience);
  await send(a, "hello bob");
  const first = mine(a, "hello bob");
  await first.locator(".meta", { hasText: "✓" }).waitFor(patience);
  // Bob sees the conversation with an unread badge, opens it, reads and answers.
  const unread = b.locator("#conversations li", { has: b.locator(".badge", { hasText: "1" }) });
  await unread.waitFor(patience);
  await unread.click();
  await b.locator("#messages li", { hasText: "hello bob" }).waitFor(patience);
  await send(b, "hi alice");
  await mine(b, "hi alice").locator(".meta", { hasText: "✓" }).waitFor(patience);
  // Alice gets the answer live, and Bob's read receipt marks her message read.
  await theirs(a, "hi alice").waitFor(patience);
  await first.locator(".meta", { hasText: "✓✓" }).waitFor(patience);
  await passed("chat");

  // reconnect: drop Alice's socket and hold her reconnects.
  gate.held = true;
  await gate.routes.at(-1).close();
  await a.locator("#status:not(.online)").waitFor(patience);
  await send(b, "while you were away");
  await mine(b, "while you were away").locator(".meta", { hasText: "✓" }).waitFor(patience);
  await send(a, "typed while offline");
  await mine(a, "typed while offline").locator(".meta", { hasText: "…" }).waitFor(patience);
  // Released: the page reconnects (backoff), resends what is pending, syncs with after_seq.
  while (!gate.release) await new Promise((resolve) => setTimeout(resolve, 50));
  gate.held = false;
  gate.release();
  await a.locator("#status.online").waitFor(patience);
  await theirs(a, "while you were away").waitFor(patience);
  await mine(a, "typed while offline").locator(".meta", { hasText: /^✓/ }).waitFor(patience);
  await theirs(b, "typed while offline").waitFor(patience);
  if (await a.locator("#messages li", { hasText: "while you were away" }).count() !== 1) {
    throw new Error("the synced message is shown more than once");
  }
  await passed("reconnect");

  // history: 40 more lines, so the chat no longer fits one page of 30.
  for (let i = 1; i <= 40; i++) await send(a, `line ${i} of 40`);
  await mine(a, "line 40 of 40").locator(".meta", { hasText: /^✓/ }).waitFor(patience);
  await a.locator("#messages li.pending").waitFor({ state: "detached", ...patience });
  await b.reload();
  await b.locator("#status.online").waitFor(patience);
  await conversation(b, alice).click();
  await theirs(b, "line 40 of 40").waitFor(patience);
  const shown = await b.locator("#messages li").count();
  if (shown !== 30) throw new Error(`the newest page shows ${shown} messages, not 30`);
  await b.locator("#messages").evaluate((list) => { list.scrollTop = 0; });
  await theirs(b, "hello bob").waitFor(patience);
  const total = await b.locator("#messages li").count();
  if (total !== 44) throw new Error(`after scrolling up ${total} messages are shown, not 44`);
  const order = await b.locator("#messages li").evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));
  if (order.some((seq, i) => i > 0 && seq <= order[i - 1])) throw new Error(`out of order: ${order}`);
  await passed("history");

  // groups: Alice creates one with Bob in it.
  const crew = `crew${run}`;
  await a.fill("#group-name", crew);
  await a.fill("#group-members", bob);
  await a.click("#new-group button");
  await a.locator("#group-info", { hasText: "2 members" }).waitFor(patience);
  const groupId = (await a.locator("#group-info").textContent()).split(" ")[1];
  await send(a, "hello crew");
  await mine(a, "hello crew").locator(".meta", { hasText: /^✓/ }).waitFor(patience);
  // Bob's list shows the group once its first message arrives; he opens it and answers.
  await conversation(b, crew).click(patience);
  await theirs(b, "hello crew").waitFor(patience);
  await send(b, "hi crew");
  await theirs(a, "hi crew").waitFor(patience);
  // Bob leaves, and joins back by the group's id.
  await b.click("#leave-group");
  await conversation(b, crew).waitFor({ state: "detached", ...patience });
  await b.fill("#group-id", groupId);
  await b.click("#join-group button");
  await conversation(b, crew).click(patience);
  await b.locator("#group-info", { hasText: "2 members" }).waitFor(patience);
  // Back in, Bob gets what is written from now on (the history before his join stays hidden
  // unless the group makes it visible).
  await send(a, "welcome back");
  await theirs(b, "welcome back").waitFor(patience);
  await passed("groups");

  // world: both open it; Alice's message reaches Bob live.
  await conversation(a, "World").click();
  await conversation(b, "World").click();
  await send(a, `hello world from ${alice}`);
  await mine(a, `hello world from ${alice}`).locator(".meta", { hasText: /^✓/ }).waitFor(patience);
  await theirs(b, `hello world from ${alice}`).waitFor(patience);
  await passed("world");

  // headers: the policy came with the page, nothing broke it, no token went into a URL.
  const csp = pageHeaders["content-security-policy"] || "";
  for (const directive of ["script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
    if (!csp.includes(directive)) throw new Error(`the page's CSP lacks ${directive}: "${csp}"`);
  }
  if (csp.includes("unsafe-inline")) throw new Error(`the page's CSP allows inline code: ${csp}`);
  const expected = { "x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer" };
  for (const [name, value] of Object.entries(expected)) {
    if (pageHeaders[name] !== value) throw new Error(`${name}: ${pageHeaders[name]}, not ${value}`);
  }
  if (violations.length) throw new Error(`CSP violations: ${violations.join("; ")}`);
  if (sockets.length < 2) throw new Error(`only ${sockets.length} sockets were seen`);
  for (const url of sockets) {
    const query = new URL(url).searchParams;
    if (!query.get("ticket") || query.has("token")) throw new Error(`a socket URL without a ticket or with a token: ${url}`);
  }
  await passed("headers");

  console.log(`browser: ${alice} and ${bob}: every part passed; screenshots in ${shots}`);
} catch (e) {
  // What each page showed when it failed, and a screenshot of it.
  for (const [name, page] of pages) {
    console.error(`${name}: ${await page.locator("#status").textContent()}; messages:`);
    console.error(await page.locator("#messages").innerHTML());
    await page.screenshot({ path: `${shots}/${name}-failed.png` });
  }
  throw e;
} finally {
  await browser.close();
}
