// The labelling page end to end in headless Chromium, driven over the DevTools
// protocol (no npm package: node's own WebSocket and fetch). Run by
// scripts/test-label-page.sh, which builds the binary and finds Chromium.
//
// It labels three sentences of the seed article with the keyboard, undoes the
// third with Backspace, kills the server (SIGKILL), starts it again, checks
// that the page resumes at the undone sentence, and checks the labels file:
// exactly the two decisions, passing `stancekit data check`.
//
//   node scripts/test-label-page.mjs BIN CHROMIUM

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [bin, chromium] = process.argv.slice(2);
const work = mkdtempSync(join(tmpdir(), "label-page-"));
const out = join(work, "labels.jsonl");
const targets = ["nato_accession", "territorial_concessions", "european_burden_sharing"];
const children = [];

function fail(message) {
  throw new Error(message);
}

/** Starts `stancekit label` on a free port; resolves to its URL. */
function startServer() {
  const child = spawn(bin, ["label", "--targets", "datasets/targets.json",
    "--input", "tests/fixtures/news/seed_article.txt", "--out", out,
    "--target", targets.join(","), "--addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`stancekit label exited (${code}) before it served`)));
    createInterface({ input: child.stdout }).once("line", (line) => {
      const url = line.match(/http:\/\/[^ ]+\//);
      url ? resolve({ child, url: url[0] }) : reject(new Error(`no address in: ${line}`));
    });
  });
}

/** Headless Chromium with the DevTools protocol on a free port; resolves to the browser's endpoint. */
function startBrowser() {
  const child = spawn(chromium, ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--remote-debugging-port=0", `--user-data-dir=${join(work, "profile")}`, "about:blank"],
    { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`chromium exited (${code})`)));
    createInterface({ input: child.stderr }).on("line", (line) => {
      const found = line.match(/DevTools listening on (ws:\/\/[^/]+)/);
      if (found) resolve(found[1].replace("ws://", "http://"));
    });
  });
}

/** A DevTools session on the browser's first page. */
async function connect(endpoint) {
  const pages = await (await fetch(`${endpoint}/json/list`)).json();
  const page = pages.find((p) => p.type === "page") || fail("no page target");
  const socket = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject; });
  let next = 0;
  const waiting = new Map();
  const requests = [];
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id && waiting.has(message.id)) {
      const { resolve, reject } = waiting.get(message.id);
      waiting.delete(message.id);
      message.error ? reject(new Error(JSON.stringify(message.error))) : resolve(message.result);
    } else if (message.method === "Network.requestWillBeSent") {
      requests.push(message.params.request.url);
    }
  };
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const id = ++next;
    waiting.set(id, { resolve, reject });
    socket.send(JSON.stringify({ id, method, params }));
  });
  await send("Page.enable");
  await send("Network.enable");
  return { send, requests, close: () => socket.close() };
}

async function evaluate(cdp, expression) {
  const { result, exceptionDetails } = await cdp.send("Runtime.evaluate", { expression, returnByValue: true });
  if (exceptionDetails) fail(`${expression}: ${JSON.stringify(exceptionDetails)}`);
  return result.value;
}

/** Polls until `expression` is true (5 s at most). */
async function until(cdp, expression) {
  // While a page loads, its elements may not exist yet: that is "not yet", not a failure.
  const guarded = `(() => { try { return ${expression}; } catch { return false; } })()`;
  for (let i = 0; i < 100; i++) {
    if (await evaluate(cdp, guarded)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  fail(`timed out waiting for ${expression}; status: ${await evaluate(cdp, "document.getElementById('status').textContent")}`);
}

const KEYS = {
  Enter: { code: "Enter", windowsVirtualKeyCode: 13, text: "\r" },
  Backspace: { code: "Backspace", windowsVirtualKeyCode: 8 },
};

async function press(cdp, key) {
  const extra = KEYS[key] || { code: `Key${key.toUpperCase()}`, windowsVirtualKeyCode: key.toUpperCase().charCodeAt(0), text: key };
  await cdp.send("Input.dispatchKeyEvent", { type: "keyDown", key, ...extra });
  await cdp.send("Input.dispatchKeyEvent", { type: "keyUp", key, code: extra.code, windowsVirtualKeyCode: extra.windowsVirtualKeyCode });
}

const current = "document.getElementById('sentence').dataset.index";
const sentence = "document.getElementById('sentence').textContent";

async function open(cdp, url) {
  await cdp.send("Page.navigate", { url });
  await until(cdp, `${current} !== undefined || !document.getElementById('done').hidden`);
}

async function main() {
  const browser = await startBrowser();
  const cdp = await connect(browser);
  let server = await startServer();
  await open(cdp, server.url);
  const decisions = [["f", "a", "n"], ["n", "n", "f"], ["a", "f", "n"]];
  const labelOf = { f: "favor", a: "against", n: "none" };
  const texts = [];
  for (const [i, keys] of decisions.entries()) {
    await until(cdp, `${current} === "${i}"`);
    texts.push(await evaluate(cdp, sentence));
    for (const key of keys) await press(cdp, key);
    await press(cdp, "Enter");
    await until(cdp, `${current} === "${i + 1}"`);
  }
  await press(cdp, "Backspace");
  await until(cdp, `${current} === "2"`);
  await until(cdp, `document.getElementById('progress').dataset.labelled === "2"`);

  server.child.kill("SIGKILL");
  await new Promise((r) => server.child.once("exit", r));
  server = await startServer();
  await open(cdp, server.url);
  await until(cdp, `${current} === "2"`);
  const resumed = await evaluate(cdp, sentence);
  if (resumed !== texts[2]) fail(`resumed at ${JSON.stringify(resumed)}, not at the undone ${JSON.stringify(texts[2])}`);
  const progress = await evaluate(cdp, "document.getElementById('progress').textContent");
  if (!progress.startsWith("2 / ")) fail(`progress after the restart: ${progress}`);

  const records = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const expected = decisions.slice(0, 2).flatMap((keys, i) =>
    keys.map((key, t) => ({ text: texts[i], target: targets[t], label: labelOf[key] })));
  const got = records.map(({ text, target, label }) => ({ text, target, label }));
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    fail(`labels file:\n${JSON.stringify(got, null, 1)}\nexpected:\n${JSON.stringify(expected, null, 1)}`);
  }
  execFileSync(bin, ["data", "check", "--targets", "datasets/targets.json", out], { stdio: "ignore" });
  const elsewhere = cdp.requests.filter((u) => !u.startsWith("http://127.0.0.1:") && u !== "about:blank");
  if (elsewhere.length) fail(`the page fetched from elsewhere: ${elsewhere.join(", ")}`);
  cdp.close();
  console.log(`PASS label page: 3 sentences labelled by keyboard, 1 undone, server killed and restarted, ` +
    `resumed at sentence 2; ${records.length} records pass data check; ${cdp.requests.length} requests, all local`);
}

let status = 0;
try {
  await main();
} catch (e) {
  console.error(`FAIL label page: ${e.message}`);
  status = 1;
} finally {
  for (const child of children) child.kill("SIGKILL");
  try {
    rmSync(work, { recursive: true, force: true });
  } catch {
    // Chromium may still be writing its profile as it dies; the folder is in tmp.
  }
}
process.exit(status);
