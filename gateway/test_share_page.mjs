// test_share_page.mjs: the share page (issue 11) in a real headless Chromium, driven by
// playwright-core, against a running gateway. scripts/check-share-page sets up the stack (a
// cluster, the gateway, an org, a receipt, live, revoked and expired share links) and passes a
// JSON config file; run that script rather than this file.
//
// Tampering happens in the real browser on the real page: page.route rewrites the gateway's
// answer (the bundle embedded in the HTML, or /ledger/keys) before the page sees it. The bundle
// files shared with test_cli.py (testdata/bundles/) are served the same way, so the page and
// the CLI are checked on the same bytes.
//
// Usage: node gateway/test_share_page.mjs CONFIG.json     last line "sharepage: N passed, N failed"
import { readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "testdata", "node", "package.json"));
const { chromium } = require("playwright-core");

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const origin = new URL(cfg.base).origin;
const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
let passed = 0, failed = 0;

function record(ok, what, detail) {
    if (ok) passed++;
    else {
        failed++;
        console.log("FAIL " + what);
        if (detail !== undefined) console.log("    " + String(detail).split("\n").slice(0, 30).join("\n    "));
    }
    return ok;
}

async function get(path, accept) {
    const headers = accept === undefined ? {} : { Accept: accept };
    const r = await fetch(cfg.base + path, { headers, redirect: "manual" });
    return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

// ---- the bundle inside the page, as the gateway embeds it and as the page reads it back -------

const EMBED_RE = /(<script type="application\/json" id="bundle">)([^<]*)(<\/script>)/;

function escapeForScript(json) {
    return json.replace(/[<>&\u2028\u2029]/g, (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));
}

function unescapeFromScript(text) {
    return text.replace(/\\(\\|u003c|u003e|u0026|u2028|u2029)/g, (m, e) => (e === "\\" ? m : String.fromCharCode(parseInt(e.slice(1), 16))));
}

function embeddedJson(html) {
    const m = EMBED_RE.exec(html);
    return m ? unescapeFromScript(m[2]) : null;
}

function withBundle(html, json) {
    return html.replace(EMBED_RE, (all, a, b, c) => a + escapeForScript(json) + c);
}

// the text a disclosed value is shown as (share.js showValue)
// (members in RFC 8785 order, as the page parsed them from the canonical disclosure)
const sortKeys = (v) => (Array.isArray(v) ? v.map(sortKeys) : v !== null && typeof v === "object"
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v);
const shown = (v) => (typeof v === "string" ? v : JSON.stringify(sortKeys(v), null, 2));

function flipHex(s, i) {
    return s.slice(0, i) + (s[i] === "0" ? "1" : "0") + s.slice(i + 1);
}

function flipB64(s, i) {
    return s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
}

// ---- browser helpers ----------------------------------------------------------------------------

const requests = []; // every request any page made: [page label, url]
const consoleErrors = [];

async function newPage(browser, label, opts = {}) {
    const context = await browser.newContext({ viewport: opts.viewport || { width: 1100, height: 900 }, acceptDownloads: true });
    if (opts.initScript) await context.addInitScript(opts.initScript);
    const page = await context.newPage();
    page.on("request", (req) => requests.push([label, req.url()]));
    page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push([label, msg.text()]); });
    page.on("pageerror", (err) => consoleErrors.push([label, "pageerror: " + err.message]));
    return { context, page };
}

async function settled(page) {
    await page.waitForFunction(() => {
        const s = document.getElementById("status");
        return s && s.dataset.state !== "checking";
    }, null, { timeout: 20000 });
    return page.evaluate(() => {
        const s = document.getElementById("status");
        return { state: s.dataset.state, step: s.dataset.step, text: s.innerText };
    });
}

/* Opens the live share page with the embedded bundle replaced (json: the new bundle text) and,
 * optionally, /ledger/keys answered with keysBody. */
async function openWith(browser, label, json, keysBody, opts = {}) {
    const { context, page } = await newPage(browser, label, opts);
    if (json !== null) {
        await page.route(cfg.base + cfg.live, async (route) => {
            const resp = await route.fetch();
            const html = await resp.text();
            await route.fulfill({ response: resp, body: withBundle(html, json) });
        });
    }
    if (keysBody !== undefined) {
        await page.route(cfg.base + "/ledger/keys", (route) =>
            route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(keysBody) }));
    }
    await page.goto(cfg.base + cfg.live);
    const st = await settled(page);
    return { context, page, st };
}

// ---- the checks -----------------------------------------------------------------------------

async function checkHttp() {
    const html = await get(cfg.live, BROWSER_ACCEPT);
    const text = html.body.toString("utf8");
    record(html.status === 200 && (html.headers.get("content-type") || "").startsWith("text/html"),
        "a browser's Accept gets the HTML page", html.status + " " + html.headers.get("content-type"));
    const csp = html.headers.get("content-security-policy") || "";
    const nonce = (/script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp) || [])[1];
    record(nonce && nonce.length === 24 && csp.includes("style-src 'nonce-" + nonce + "'") &&
        ["default-src 'none'", "img-src 'self' data:", "connect-src 'self'", "base-uri 'none'",
            "form-action 'none'", "frame-ancestors 'none'"].every((d) => csp.includes(d)),
        "CSP: default-src 'none', nonce'd script and style, connect-src 'self', no base, form or frame", csp);
    record(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), "CSP has no unsafe-inline or unsafe-eval", csp);
    const scripts = [...text.matchAll(/<script([^>]*)>/g)].map((m) => m[1]);
    record(scripts.length === 2 && scripts.every((a) => a.includes('nonce="' + nonce + '"') || a.includes('type="application/json"')),
        "every executable script element carries the response's nonce", scripts.join(" | "));
    record(!/\son[a-z]+\s*=/i.test(text.replace(EMBED_RE, "")), "no inline event handler in the page's markup");
    record(!/(src|href)\s*=\s*"(https?:)?\/\//i.test(text), "no external URL in the page", text.match(/(src|href)="[^"]*"/g));
    record(html.headers.get("x-content-type-options") === "nosniff", "X-Content-Type-Options: nosniff");
    record(html.headers.get("referrer-policy") === "no-referrer", "Referrer-Policy: no-referrer (the token is in the URL)");
    record(html.headers.get("cache-control") === "no-store", "Cache-Control: no-store", html.headers.get("cache-control"));
    record((html.headers.get("vary") || "").includes("Accept"), "Vary: Accept", html.headers.get("vary"));
    const again = await get(cfg.live, BROWSER_ACCEPT);
    const nonce2 = (/'nonce-([^']+)'/.exec(again.headers.get("content-security-policy") || "") || [])[1];
    record(nonce2 && nonce2 !== nonce, "a fresh nonce per response", nonce + " " + nonce2);

    // content negotiation: HTML only when it ranks above JSON
    const json = await get(cfg.live, "application/json");
    const cases = [
        [undefined, "json"], ["*/*", "json"], ["application/json", "json"], ["text/html", "html"],
        ["text/*", "html"], ["text/html;q=0.5, application/json", "json"], ["application/json;q=0.5, text/html", "html"],
        ["text/html, application/json", "json"], ["text/html;q=0, */*", "json"], ["TEXT/HTML", "html"],
        ["text/html;q=1.5, application/json;q=0.9", "json"], [BROWSER_ACCEPT, "html"],
    ];
    for (const [accept, want] of cases) {
        const r = await get(cfg.live, accept);
        const ct = r.headers.get("content-type") || "";
        const got = ct.startsWith("text/html") ? "html" : ct.startsWith("application/json") ? "json" : ct;
        record(r.status === 200 && got === want, `Accept ${JSON.stringify(accept)} gets ${want}`, `${r.status} ${ct}`);
    }
    record(json.status === 200 && embeddedJson(text) === json.body.toString("utf8"),
        "the embedded bundle is exactly the JSON answer (after the documented escapes)");
    const bundle = JSON.parse(json.body.toString("utf8"));
    record(bundle.checkpoint !== null && bundle.receipt.seq === cfg.seq, "the live bundle has a signed checkpoint");
    const cli = await import("node:child_process").then((cp) =>
        cp.spawnSync(cfg.verify, ["bundle", "--key", cfg.vkey, "-"], { input: json.body }));
    record(cli.status === 0, "the CLI verifies the live bundle (exit 0)", cli.stdout + cli.stderr);

    // unknown, revoked, expired: the same page, 404, for browsers; problem+json for programs
    const pages = {};
    for (const which of ["unknown", "revoked", "expired"]) {
        const r = await get(cfg[which], BROWSER_ACCEPT);
        const body = r.body.toString("utf8");
        record(r.status === 404 && (r.headers.get("content-type") || "").startsWith("text/html") &&
            body.includes("Link not available") && (r.headers.get("content-security-policy") || "").includes("default-src 'none'") &&
            r.headers.get("cache-control") === "no-store",
            `${which} link: 404 "Link not available" page with CSP`, `${r.status} ${r.headers.get("content-type")}`);
        pages[which] = body.replace(/nonce="[^"]*"/g, 'nonce=""');
        const p = await get(cfg[which], "application/json");
        record(p.status === 404 && (p.headers.get("content-type") || "").startsWith("application/problem+json"),
            `${which} link: 404 problem+json for programs`, p.status);
    }
    record(pages.unknown === pages.revoked && pages.unknown === pages.expired,
        "unknown, revoked and expired links: the same page byte for byte (but the nonce)");
    return { html: text, bundle, json: json.body.toString("utf8") };
}

async function checkGenuine(browser, live) {
    const { context, page } = await newPage(browser, "genuine");
    await page.goto(cfg.base + cfg.live);
    const st = await settled(page);
    record(st.state === "verified" && /Verified/.test(st.text), "genuine link: the page says verified", JSON.stringify(st));
    const data = await page.evaluate(() => {
        const rows = (id) => [...document.querySelectorAll("#" + id + " tr")].map((tr) => [tr.dataset.field, tr.querySelector("td code").textContent]);
        const t = (id) => document.getElementById(id).textContent;
        return {
            disclosed: rows("disclosed-rows"), withheld: rows("withheld-rows"),
            org: t("org"), kind: t("kind"), seq: t("seq"), utc: t("time-utc"), local: t("time-local"),
            origin: t("cp-origin"), size: t("cp-size"), root: t("cp-root"), key: t("cp-key"), published: t("cp-published"),
            command: t("offline-command"), steps: [...document.querySelectorAll("#steps li")].map((li) => li.dataset.state + " " + li.textContent),
            pwned: [window.__pwned_script, window.__pwned_img, window.__pwned_origin], imgs: document.querySelectorAll("main img").length,
        };
    });
    const b = live.bundle;
    const want = Object.keys(cfg.disclosed).sort();
    record(JSON.stringify(data.disclosed.map((r) => r[0])) === JSON.stringify(want), "every disclosed field is listed, in name order", JSON.stringify(data.disclosed));
    for (const name of want) {
        const row = data.disclosed.find((r) => r[0] === name);
        record(row && row[1] === shown(cfg.disclosed[name]), `disclosed value of ${name} shown exactly`, JSON.stringify(row) + " want " + JSON.stringify(shown(cfg.disclosed[name])));
    }
    record(JSON.stringify(data.withheld.map((r) => r[0])) === JSON.stringify(cfg.withheld), "withheld fields listed by name (including a never-public one)", JSON.stringify(data.withheld));
    for (const [name, digest] of data.withheld)
        record(digest === b.receipt.fields[name], `withheld ${name} shows its digest`, digest);
    record(data.org === cfg.org && data.kind === "contract.sign" && data.seq === String(cfg.seq), "organization, kind and sequence number shown", JSON.stringify(data));
    record(data.utc === b.receipt.ts.replace("T", " ").replace("Z", " UTC") && data.local.length > 8, "time shown in UTC and local time", data.utc + " / " + data.local);
    const note = b.checkpoint.split("\n");
    record(data.origin === note[0] && data.size === note[1] && data.root === note[2], "checkpoint origin, tree size and root shown", JSON.stringify([data.origin, data.size, data.root]));
    record(data.key.startsWith("share.test (key ID " + cfg.vkey.split("+")[1] + ")") && data.published.startsWith("yes"), "checkpoint key name shown, and published", data.key + " / " + data.published);
    record(data.command === `defendable-verify bundle --key '${cfg.vkey}' receipt-bundle.json`, "offline instructions give the exact CLI command", data.command);
    record(data.steps.length === 6 && data.steps.every((s) => s.startsWith("ok ")), "all six steps passed", data.steps.join("\n"));
    record(data.steps.some((s) => s.includes("browser's WebCrypto")), "Ed25519 checked by the browser's WebCrypto when it has it", data.steps.join("\n"));
    record(data.pwned.every((x) => x === undefined) && data.imgs === 0, "markup in field values and in the origin stays text (no script ran, no element made)", JSON.stringify(data.pwned) + " imgs " + data.imgs);
    await page.screenshot({ path: join(cfg.artifacts, "share-page-desktop.png"), fullPage: true });

    // Download bundle: exactly the JSON bundle
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const path = join(cfg.work, "downloaded.json");
    await dl.saveAs(path);
    record(readFileSync(path, "utf8") === live.json && dl.suggestedFilename() === "receipt-bundle.json",
        "Download bundle gives exactly the JSON bundle, as receipt-bundle.json", dl.suggestedFilename());
    const cli = (await import("node:child_process")).spawnSync(cfg.verify, ["bundle", "--key", cfg.vkey, path]);
    record(cli.status === 0, "the downloaded bundle verifies with the CLI command shown", String(cli.stdout) + cli.stderr);

    // keyboard: Tab reaches the Download link and both details
    await page.keyboard.press("Escape");
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const reached = new Set();
    for (let i = 0; i < 20; i++) {
        await page.keyboard.press("Tab");
        reached.add(await page.evaluate(() => {
            const a = document.activeElement;
            return a.id || (a.tagName === "SUMMARY" ? "summary:" + a.parentElement.id : a.tagName);
        }));
    }
    record(reached.has("download") && reached.has("summary:details-steps") && reached.has("summary:details-technical"),
        "keyboard: Tab reaches Download and both details", [...reached].join(", "));
    await page.focus("#details-steps summary");
    await page.keyboard.press("Enter");
    record(await page.evaluate(() => document.getElementById("details-steps").open), "keyboard: Enter opens the details");
    const a11y = await page.evaluate(() => ({
        lang: document.documentElement.lang, h1: document.querySelectorAll("h1").length, main: document.querySelectorAll("main").length,
        captions: document.querySelectorAll("table caption").length, live: document.getElementById("status").getAttribute("role"),
    }));
    record(a11y.lang === "en" && a11y.h1 === 1 && a11y.main === 1 && a11y.captions === 2 && a11y.live === "status",
        "semantic page: lang, one h1, main, captioned tables, a status region", JSON.stringify(a11y));
    // contrast of the verified banner and the body text (WCAG relative luminance)
    const contrast = await page.evaluate(() => {
        const lum = (c) => {
            const v = c.match(/\d+/g).slice(0, 3).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
        };
        const ratio = (el) => {
            const s = getComputedStyle(el);
            let bg = el, b = s.backgroundColor;
            while (/rgba\(0, 0, 0, 0\)|transparent/.test(b) && bg.parentElement) { bg = bg.parentElement; b = getComputedStyle(bg).backgroundColor; }
            if (/rgba\(0, 0, 0, 0\)|transparent/.test(b)) b = "rgb(255, 255, 255)";
            const [l1, l2] = [lum(s.color), lum(b)].sort((x, y) => y - x);
            return (l1 + 0.05) / (l2 + 0.05);
        };
        return ["#status-title", "#status-detail", "#disclosed-rows td", ".brand", "caption", "#download"].map((q) => [q, ratio(document.querySelector(q))]);
    });
    record(contrast.every(([, r]) => r >= 4.5), "text contrast at least 4.5:1", JSON.stringify(contrast));

    // print: nothing wider than the paper, and a PDF for the artefacts
    await page.setViewportSize({ width: 700, height: 900 });
    await page.emulateMedia({ media: "print" });
    const over = await page.evaluate(() => {
        const w = document.documentElement.clientWidth;
        return [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > w + 1).map((e) => e.tagName + "#" + e.id).slice(0, 5)
            .concat(document.documentElement.scrollWidth > w ? ["scrollWidth " + document.documentElement.scrollWidth] : []);
    });
    record(over.length === 0, "print media: nothing overflows the page width", over.join(", "));
    await page.pdf({ path: join(cfg.artifacts, "share-page.pdf"), format: "A4", printBackground: true });
    await context.close();
}

async function checkPhone(browser) {
    const { context, page } = await newPage(browser, "phone", { viewport: { width: 375, height: 812 } });
    await page.goto(cfg.base + cfg.live);
    const st = await settled(page);
    const layout = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        over: [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > 376).map((e) => e.tagName + "#" + e.id).slice(0, 5),
    }));
    record(st.state === "verified" && layout.scroll <= 375 && layout.over.length === 0,
        "phone width (375 px): verified, no horizontal scrolling, nothing cut", JSON.stringify(layout));
    await page.screenshot({ path: join(cfg.artifacts, "share-page-phone.png"), fullPage: true });
    await context.close();
}

async function checkUnavailable(browser) {
    const { context, page } = await newPage(browser, "unavailable");
    const r = await page.goto(cfg.base + cfg.revoked);
    const title = await page.textContent("h1");
    record(r.status() === 404 && title.includes("Link not available"), "a revoked link opens the friendly 404 page in the browser", r.status() + " " + title);
    await page.screenshot({ path: join(cfg.artifacts, "share-page-unavailable.png") });
    await context.close();
}

async function checkCsp(browser) {
    // markup injected into the page's HTML, as a compromised field renderer or a proxy would:
    // an inline script without the nonce, and an inline handler; the page's own script still runs
    const { context, page } = await newPage(browser, "csp");
    await page.route(cfg.base + cfg.live, async (route) => {
        const resp = await route.fetch();
        const html = (await resp.text()).replace("<main>",
            '<main><script>window.__inline_ran = 1</script><img id="bad" src="data:image/png;base64,AAAA" onerror="window.__handler_ran = 1">');
        await route.fulfill({ response: resp, body: html });
    });
    await page.goto(cfg.base + cfg.live);
    const st = await settled(page);
    await page.waitForFunction(() => document.getElementById("bad").complete);
    const ran = await page.evaluate(() => [window.__inline_ran, window.__handler_ran, typeof window.dfdShare]);
    record(ran[0] === undefined && ran[1] === undefined && ran[2] === "object" && st.state === "verified",
        "CSP: an injected inline script and an inline handler do not run; the nonce'd page script does", JSON.stringify(ran));
    await context.close();
}

async function checkTampered(browser, live) {
    const b = live.bundle;
    const note = b.checkpoint.split("\n");
    const [prefix, sig] = [note[4].slice(0, note[4].lastIndexOf(" ")), note[4].slice(note[4].lastIndexOf(" ") + 1)];
    const withheld = cfg.withheld[0];
    const mutations = [
        ["a byte of a disclosure", (x) => { x.receipt.disclosures[1] = flipB64(x.receipt.disclosures[1], 30); }, "disclosures"],
        ["a disclosed field's digest", (x) => { x.receipt.fields.title = flipB64(x.receipt.fields.title, 5); }, "disclosures"],
        ["a withheld field's digest", (x) => { x.receipt.fields[withheld] = flipB64(x.receipt.fields[withheld], 5); }, "receipt"],
        ["header seq", (x) => { x.receipt.seq += 1; }, "receipt"],
        ["header kind", (x) => { x.receipt.kind = "contract.signs"; }, "receipt"],
        ["header ts", (x) => { x.receipt.ts = x.receipt.ts.slice(0, 25) + (x.receipt.ts[25] === "0" ? "1" : "0") + "Z"; }, "receipt"],
        ["header prev", (x) => { x.receipt.prev = flipHex(x.receipt.prev, 10); }, "receipt"],
        ["receipt hash", (x) => { x.receipt.hash = flipHex(x.receipt.hash, 63); }, "receipt"],
        ["an inclusion-proof hash", (x) => { x.inclusion.hashes[0] = flipHex(x.inclusion.hashes[0], 7); }, "inclusion"],
        ["the tree size", (x) => { x.inclusion.tree_size -= 1; }, "checkpoint"],
        ["the checkpoint root", (x) => { x.checkpoint = [note[0], note[1], flipB64(note[2], 3), ...note.slice(3)].join("\n"); }, "checkpoint"],
        ["the signature", (x) => { x.checkpoint = b.checkpoint.replace(note[4], prefix + " " + flipB64(sig, 20)); }, "checkpoint"],
        ["no checkpoint", (x) => { x.checkpoint = null; }, "key"],
        ["an extra member", (x) => { x.extra = 1; }, "bundle"],
    ];
    for (const [what, mutate, step] of mutations) {
        const x = JSON.parse(live.json);
        mutate(x);
        const { context, st } = await openWith(browser, "tampered " + what, JSON.stringify(x));
        record(st.state === "failed" && st.step === step && /Not verified/.test(st.text),
            `tampered ${what}: not verified, failed at ${step}`, JSON.stringify(st));
        await context.close();
    }
    // a key the deployment does not publish: /ledger/keys answers with another key
    const { context, page, st } = await openWith(browser, "unpublished key", null,
        { origin: "share.test", verifier_keys: ["other.test+25a4e772+ARYg8fRR8wLNfD2hRFpc6AVmvYLn1ZGHkKWQnWCRwJw3"] });
    record(st.state === "failed" && st.step === "key" && (await page.textContent("#cp-published")) === "no",
        "checkpoint key not among /ledger/keys: not verified, failed at key", JSON.stringify(st));
    await page.screenshot({ path: join(cfg.artifacts, "share-page-not-verified.png"), fullPage: true });
    await context.close();
    // /ledger/keys unreachable: nothing to check the signature against, so not verified
    const down = await newPage(browser, "keys unavailable");
    await down.page.route(cfg.base + "/ledger/keys", (route) => route.fulfill({ status: 503, body: "" }));
    await down.page.goto(cfg.base + cfg.live);
    const dst = await settled(down.page);
    record(dst.state === "failed" && dst.step === "key", "/ledger/keys unavailable: not verified, failed at key", JSON.stringify(dst));
    await down.context.close();
}

async function checkVectors(browser, fallback) {
    // the bundle files test_cli.py checks with the CLI: the page must reach the same verdicts
    const manifest = JSON.parse(readFileSync(join(cfg.vectors, "vectors.json"), "utf8"));
    const keys = { origin: "ledger.test", verifier_keys: [manifest.verifier_key] };
    const label = fallback ? " (bundled Ed25519)" : "";
    for (const c of manifest.cases) {
        if (fallback && !["genuine.json", "tampered-signature.json", "tampered-root.json"].includes(c.file)) continue;
        const text = readFileSync(join(cfg.vectors, c.file), "utf8").trimEnd();
        const { context, page, st } = await openWith(browser, "vector " + c.file, text, keys, fallback ? { initScript: NO_WEBCRYPTO_ED25519 } : {});
        if (c.page_step === null) {
            const rows = await page.evaluate(() => [...document.querySelectorAll("#disclosed-rows tr")].map((tr) => [tr.dataset.field, tr.querySelector("td code").textContent]));
            const same = Object.keys(manifest.disclosed).every((n) => rows.some((r) => r[0] === n && r[1] === shown(manifest.disclosed[n])));
            const steps = await page.textContent("#steps");
            record(st.state === "verified" && same && rows.length === Object.keys(manifest.disclosed).length &&
                (!fallback || steps.includes("bundled implementation")),
                `shared vector ${c.file}${label}: verified, with every disclosed value (escapes, non-ASCII, nesting)`, JSON.stringify(st) + JSON.stringify(rows));
        } else {
            record(st.state === "failed" && st.step === c.page_step, `shared vector ${c.file}${label}: not verified at ${c.page_step} (CLI: exit ${c.cli_exit})`, JSON.stringify(st));
        }
        await context.close();
    }
}

// hides WebCrypto's Ed25519 (as in a browser without it), so the page must use its own verifier
const NO_WEBCRYPTO_ED25519 = `(() => {
    const orig = SubtleCrypto.prototype.importKey;
    SubtleCrypto.prototype.importKey = function (format, data, alg, ...rest) {
        const name = typeof alg === "string" ? alg : alg && alg.name;
        if (String(name).toLowerCase() === "ed25519") return Promise.reject(new DOMException("no Ed25519", "NotSupportedError"));
        return orig.call(this, format, data, alg, ...rest);
    };
})();`;

// RFC 8032 section 7.1, tests 1 to 3 (secret keys omitted: only verification is tested)
const RFC8032 = [
    ["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"],
    ["3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"],
    ["fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"],
];

async function checkEd25519(browser) {
    const { context, page } = await newPage(browser, "ed25519", { initScript: NO_WEBCRYPTO_ED25519 });
    await page.goto(cfg.base + cfg.live);
    const st = await settled(page);
    const steps = await page.textContent("#steps");
    record(st.state === "verified" && steps.includes("bundled implementation"),
        "without WebCrypto Ed25519 the bundled verifier verifies the live link", JSON.stringify(st) + steps);
    const L = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"; // the group order, little-endian
    for (const [i, [pub, msg, sig]] of RFC8032.entries()) {
        const flipSig = sig.slice(0, 70) + (sig[70] === "0" ? "1" : "0") + sig.slice(71);
        const flipMsg = msg ? (msg[0] === "0" ? "1" : "0") + msg.slice(1) : "00";
        const sPlusL = sig.slice(0, 64) + addLE(sig.slice(64), L);
        const got = await page.evaluate(async ([pub, msg, sig, flipSig, flipMsg, sPlusL]) => {
            const v = window.dfdShare.ed25519VerifyBundled, w = window.dfdShare.ed25519Verify;
            return [await v(pub, msg, sig), await v(pub, msg, flipSig), await v(pub, flipMsg, sig), await v(pub, msg, sPlusL), await w(pub, msg, sig)];
        }, [pub, msg, sig, flipSig, flipMsg, sPlusL]);
        record(JSON.stringify(got) === "[true,false,false,false,true]",
            `RFC 8032 test ${i + 1}: bundled verifier accepts it, refuses a changed signature, a changed message and S + L`, JSON.stringify(got));
    }
    await context.close();
}

function addLE(aHex, bHex) {
    const a = Buffer.from(aHex, "hex"), b = Buffer.from(bHex, "hex"), out = Buffer.alloc(32);
    let carry = 0;
    for (let i = 0; i < 32; i++) {
        const s = a[i] + b[i] + carry;
        out[i] = s & 0xff;
        carry = s >> 8;
    }
    return out.toString("hex");
}

async function main() {
    const t0 = Date.now();
    const live = await checkHttp();
    const browser = await chromium.launch({
        executablePath: "/usr/bin/chromium", headless: true,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    try {
        // one broken section must not hide the others' results
        const sections = [["genuine", () => checkGenuine(browser, live)], ["phone", () => checkPhone(browser)],
            ["unavailable", () => checkUnavailable(browser)], ["csp", () => checkCsp(browser)],
            ["tampered", () => checkTampered(browser, live)], ["vectors", () => checkVectors(browser, false)],
            ["vectors, bundled Ed25519", () => checkVectors(browser, true)], ["ed25519", () => checkEd25519(browser)]];
        for (const [name, fn] of sections) {
            try {
                await fn();
            } catch (e) {
                record(false, `section ${name} raised`, e && e.stack);
            }
        }
    } finally {
        await browser.close();
    }
    const foreign = requests.filter(([, u]) => !(u.startsWith(origin + "/") || u.startsWith("data:") || u.startsWith("blob:" + origin + "/")));
    record(requests.length > 0 && foreign.length === 0, `all ${requests.length} requests of the pages went to the page's origin`,
        foreign.slice(0, 5).map((r) => r.join(" ")).join("\n"));
    // the CSP check provokes two console errors on purpose; nothing else may complain
    // expected: the CSP check's blocked script and handler, the 404 of the unavailable page,
    // the 503 of the keys-unavailable check
    const unexpected = consoleErrors.filter(([label, text]) => !((label === "csp" && /Content Security Policy/.test(text)) ||
        (label === "keys unavailable" && /status of 503/.test(text)) || (label === "unavailable" && /status of 404/.test(text))));
    record(unexpected.length === 0, "no console error or page error (but the CSP check's own)", unexpected.slice(0, 5).map((e) => e.join(": ")).join("\n"));
    const csp = consoleErrors.filter(([label, text]) => label === "csp" && /Content Security Policy/.test(text));
    console.log(`    (browser checks: ${((Date.now() - t0) / 1000).toFixed(1)} s; artefacts in ${cfg.artifacts}: share-page-desktop.png, share-page-phone.png, share-page-not-verified.png, share-page-unavailable.png, share-page.pdf; CSP reports seen: ${csp.length})`);
}

try {
    await main();
} catch (e) {
    record(false, "the browser test raised", e && e.stack);
}
writeFileSync(join(cfg.work, "sharepage.result"), `${passed} ${failed}\n`);
console.log(`sharepage: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
