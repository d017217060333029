// The web console in a real browser: Debian's headless chromium driven by
// puppeteer-core. Starts its own tq-broker and two tq-workers on loopback in
// a temp dir, uploads a URL file with a bad line, watches the batch reach
// 100% without reloading, opens a task, downloads and checks the results,
// and checks that a hostile URL and result never run script.
//
// usage: node console_browser_test.js BIN_DIR SCREENSHOT_DIR
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const zlib = require("zlib");
const puppeteer = require("puppeteer-core");

const [binDir, shotDir] = process.argv.slice(2);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tq-web-"));
const children = [];
const step = (m) => console.log(`[${new Date().toISOString()}] ${m}`);

function start(name, args) {
  const log = fs.openSync(path.join(tmp, name + ".log"), "w");
  // Its own process group, so cleanup takes its children too.
  const child = spawn(path.join(binDir, name.split("-").slice(0, 2).join("-")),
                      args, { detached: true, stdio: ["ignore", log, log] });
  children.push(child);
  return child;
}

async function until(what, condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));  // poll interval
  }
}

function check(ok, message) {
  if (!ok) throw new Error("check failed: " + message);
  step("ok: " + message);
}

function cleanup() {
  for (const c of children) {
    try { process.kill(-c.pid, "SIGKILL"); } catch (e) { /* gone */ }
  }
}

async function main() {
  fs.mkdirSync(shotDir, { recursive: true });
  start("tq-broker", ["--db", path.join(tmp, "tq.db"), "--listen",
                      "tcp://127.0.0.1:0", "--ready-file",
                      path.join(tmp, "endpoint"), "--http", "127.0.0.1:0",
                      "--http-ready-file", path.join(tmp, "url"),
                      "--geoip-db", "none"]);
  const read = (f) => { try { return fs.readFileSync(f, "utf8").trim(); }
                        catch (e) { return ""; } };
  const endpoint = await until("the broker", () => read(path.join(tmp, "endpoint")), 20000);
  const base = await until("the console", () => read(path.join(tmp, "url")), 20000);
  step(`broker ${endpoint}, console ${base}`);

  // A hostile handler: its output is HTML that would run if unescaped.
  const handler = path.join(tmp, "handler.sh");
  fs.writeFileSync(handler,
    'sleep 0.4\nprintf \'{"title":"<script>window.__xss=1;alert(1)</script>' +
    '<img src=x onerror=window.__xss=2>","url":"%s"}\' "$1"\n');
  const hostileUrl = "https://hostile.example/'onmouseover=window.__xss=3//";
  const urlFile = path.join(tmp, "urls.txt");
  const good = [];
  for (let i = 0; i < 8; i++) good.push(`https://site${i}.example/page`);
  fs.writeFileSync(urlFile, [good.slice(0, 4).join("\n"), "ftp://bad.example/",
                             good.slice(4).join("\n"), hostileUrl, ""].join("\n"));

  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const dialogs = [];
    page.on("dialog", async (d) => {
      dialogs.push(d.type() + ": " + d.message());
      await d.accept();  // the cancel confirm, or a hostile alert (a failure)
    });
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));

    // Overview.
    await page.goto(base + "/", { waitUntil: "load" });
    check((await page.$eval("h1", (e) => e.textContent)) === "Overview", "overview opens");
    await page.screenshot({ path: path.join(shotDir, "overview-empty.png"), fullPage: true });

    // Upload a URL file with a bad line.
    await page.goto(base + "/upload", { waitUntil: "load" });
    const input = await page.$("#file");
    await input.uploadFile(urlFile);
    await page.type("input[name=user_agent]", "tq-browser-test");
    await page.screenshot({ path: path.join(shotDir, "upload.png"), fullPage: true });
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("#submit")]);
    check(/\/batches\/[0-9a-f]{16}$/.test(page.url()), "upload lands on the batch page");
    const batch = page.url().split("/").pop();
    const report = await page.$eval("#bad-lines", (e) => e.textContent);
    check(report.includes("urls.txt:5: scheme 'ftp' is not http or https"),
          "the bad line is reported as tq-submit reports it: " + report.split("\n")[0]);
    check(report.includes("submitted 9 tasks"), "the rest is submitted");
    await page.screenshot({ path: path.join(shotDir, "batch-queued.png"), fullPage: true });

    // Two workers finish it; the page follows without a reload.
    for (const id of ["w1", "w2"]) {
      start("tq-worker-" + id, ["--broker", endpoint, "--id", id, "--country", "none",
                                "--concurrency", "2", "--exec", "sh " + handler + " {url}"]);
    }
    const navigations = [];
    page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    await until("the batch at 100%", () => page.$eval("#batch-progress",
      (e) => e.dataset.total === "9" && e.dataset.finished === "9"), 60000);
    const pct = await page.$eval("#batch-progress .pct", (e) => e.textContent);
    check(pct === "100%", "the batch page shows 100% live");
    check(navigations.length === 0, "no reload was needed");
    await page.screenshot({ path: path.join(shotDir, "batch-done.png"), fullPage: true });

    // A task page.
    const taskHref = await page.$eval("table.tasks td.url a", (a) => a.getAttribute("href"));
    await page.goto(base + taskHref, { waitUntil: "load" });
    const shownUrl = await page.$eval("#task-url", (e) => e.textContent);
    check(good.includes(shownUrl) || shownUrl === hostileUrl, "the task page shows its URL");
    const result = await page.$eval("#result", (e) => e.textContent);
    check(result.includes("<script>window.__xss=1"), "the result's HTML shows as text");
    // Every attempt, from the broker (as tq-ctl task lists them).
    const attempts = await page.$$eval("#attempts tbody tr", (rows) => rows.map((r) => r.textContent));
    check(attempts.length === 1 && /w[12]/.test(attempts[0]) && attempts[0].includes("ok"),
          "the task page lists its attempt with its worker: " + attempts.join(" | "));
    await page.screenshot({ path: path.join(shotDir, "task.png"), fullPage: true });

    // The hostile task: hover its URL, look for any script having run.
    await page.goto(base + `/batches/${batch}?q=hostile`, { waitUntil: "load" });
    await page.hover("table.tasks td.url a");
    await page.click("table.tasks td.url a");
    await page.waitForSelector("#task-url");
    await page.hover("#task-url");
    check((await page.$eval("#task-url", (e) => e.textContent)) === hostileUrl,
          "the hostile URL is shown as it was submitted");
    await page.screenshot({ path: path.join(shotDir, "task-hostile.png"), fullPage: true });
    check((await page.evaluate(() => window.__xss)) === undefined, "no hostile script ran");

    // Download the results as the browser does (same origin, same cookies).
    await page.goto(base + `/batches/${batch}`, { waitUntil: "load" });
    const href = await page.$eval("#download-results", (a) => a.getAttribute("href"));
    const jsonl = await page.evaluate((h) => fetch(h).then((r) => r.text()), href);
    const lines = jsonl.trim().split("\n").map((l) => JSON.parse(l));
    check(lines.length === 9, "the results download has 9 lines");
    const urls = new Set(lines.map((l) => l.url));
    check(good.every((u) => urls.has(u)) && urls.has(hostileUrl), "one line per submitted URL");
    check(lines.every((l) => l.status === "done" && l.ok === true && l.batch_id === batch),
          "every result is done and ok");
    // The handler's JSON output is embedded in the line as an object.
    check(lines.every((l) => JSON.stringify(l.result).includes(l.url)), "each result is its task's");
    const tarB64 = await page.evaluate((h) => fetch(h).then((r) => r.arrayBuffer()).then((b) => {
      let s = ""; const u = new Uint8Array(b);
      for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
      return btoa(s);
    }), `/batches/${batch}/files.tar.gz`);
    const tar = zlib.gunzipSync(Buffer.from(tarB64, "base64")).toString("latin1");
    check((tar.match(/result\.json/g) || []).length >= 9, "the archive holds every result.json");

    // The other pages, for the record.
    await page.goto(base + "/workers", { waitUntil: "load" });
    check((await page.$$eval("tbody tr", (r) => r.length)) === 2, "the workers page lists both workers");
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }),
                       page.click("form[action='/workers/w1/drain'] button")]);
    check(dialogs.length === 1 && dialogs[0].startsWith("confirm"), "drain asks first");
    dialogs.length = 0;
    check((await page.$eval(".notice", (e) => e.textContent)) === "worker w1 drained",
          "the worker is drained");
    await until("w1 shown draining", () => page.$$eval("tbody tr",
      (rows) => rows.some((r) => r.textContent.includes("w1") && r.textContent.includes("draining"))), 10000);
    await page.screenshot({ path: path.join(shotDir, "workers.png"), fullPage: true });
    await page.goto(base + "/batches", { waitUntil: "load" });
    await page.screenshot({ path: path.join(shotDir, "batches.png"), fullPage: true });
    await page.goto(base + "/", { waitUntil: "load" });
    await page.screenshot({ path: path.join(shotDir, "overview.png"), fullPage: true });

    check(dialogs.length === 0, "no dialog opened: " + JSON.stringify(dialogs));
    check(pageErrors.length === 0, "no script errors: " + JSON.stringify(pageErrors));
  } finally {
    await browser.close();
  }
}

const overall = setTimeout(() => {
  console.error("browser test: over its 180 s budget");
  cleanup();
  process.exit(1);
}, 180000);

main().then(() => {
  clearTimeout(overall);
  cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
  step("browser test passed; screenshots in " + shotDir);
}, (e) => {
  clearTimeout(overall);
  console.error(e.stack || String(e));
  for (const f of fs.readdirSync(tmp).filter((f) => f.endsWith(".log"))) {
    console.error(`--- ${f}\n` + fs.readFileSync(path.join(tmp, f), "utf8").slice(-3000));
  }
  cleanup();
  process.exit(1);
});
