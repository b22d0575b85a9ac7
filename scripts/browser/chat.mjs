// Two users in two browser contexts: both register on the page, one starts a chat by
// username, they exchange messages both ways (acks, the unread badge, a read receipt), and
// screenshots are saved. Run by scripts/browser-test.
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
try {
  const run = Date.now() % 1000000;
  const [alice, bob] = [`alice${run}`, `bob${run}`];

  async function signUp(name) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => { throw e; });
    page.on("console", (m) => console.error(`${name} console: ${m.text()}`));
    pages.push([name, page]);
    await page.goto(base);
    await page.fill("#username", name);
    await page.fill("#password", "browser password");
    await page.click("#register");
    await page.locator("#status.online").waitFor(patience);
    return page;
  }
  const a = await signUp(alice);
  const b = await signUp(bob);

  // Alice starts the chat by username and writes; her message is pending, then acked.
  await a.fill("#peer", bob);
  await a.click("#new-chat button");
  await a.locator("#composer").waitFor({ state: "visible", ...patience });
  await a.fill("#text", "hello bob");
  await a.click("#send");
  const sent = a.locator("#messages li.mine", { hasText: "hello bob" });
  await sent.locator(".meta", { hasText: "✓" }).waitFor(patience);

  // Bob sees the conversation with an unread badge, opens it, reads and answers.
  const unread = b.locator("#conversations li", { has: b.locator(".badge", { hasText: "1" }) });
  await unread.waitFor(patience);
  await unread.click();
  await b.locator("#messages li", { hasText: "hello bob" }).waitFor(patience);
  await b.fill("#text", "hi alice");
  await b.click("#send");
  await b.locator("#messages li.mine", { hasText: "hi alice" }).locator(".meta", { hasText: "✓" }).waitFor(patience);

  // Alice gets the answer live, and Bob's read receipt marks her message read.
  await a.locator("#messages li:not(.mine)", { hasText: "hi alice" }).waitFor(patience);
  await sent.locator(".meta", { hasText: "✓✓" }).waitFor(patience);

  await a.screenshot({ path: `${shots}/alice.png` });
  await b.screenshot({ path: `${shots}/bob.png` });
  console.log(`browser: ${alice} and ${bob} chatted both ways; screenshots in ${shots}`);
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
