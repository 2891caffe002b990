#!/usr/bin/env python3
"""Soak test of defendable-gateway: a steady, bounded, mixed load for a fixed time, watching for
leaks. Python 3 standard library only; run by scripts/soak, which provides the cluster.

What it does:
  * creates the database dfd_soak with the extension and the login role dfd_soak_gateway (only
    defendable_gateway), starts the real gateway (GATEWAY_THREADS=4, mail to a MAIL_DIR) on a free
    127.0.0.1 port, logs in through a magic link, creates an organization and an API key;
  * runs worker threads, each on its own keep-alive http.client connection at a fixed rate (no
    burst catch-up when it falls behind): an API-key writer that appends receipts and shares some
    of them (revoking the oldest shares, whose links must then answer 404); two readers cycling
    through health, receipt pages and details, share links, proofs, checkpoints, ledger verify,
    /me, keys, metrics; an owner managing API keys and reading the org; a magic-link user who
    requests a link, reads it from MAIL_DIR, opens the page, posts it and uses the session.
    Every response is checked against its expected status; a 5xx, an unexpected status or a
    transport error is an error;
  * samples every 10 s: the gateway's VmRSS, open fds (split into client connections on its port
    and everything else), threads, the gateway role's backends in pg_stat_activity, requests and
    errors, and prints them as a table;
  * then checks: zero errors; RSS at the end within a bound of the first sample after warm-up;
    the gateway's own fds (all but client connections) equal to the warm-up count; every client
    connection closed once the clients left; the role's backends never above the pool (threads
    + the signer's, the mail thread's and the share count thread's connections) and equal to the
    warm-up count at the end;
    verify_ledger() ok for every organization; the gateway still running and no error logged.

Environment: PGHOST, PGPORT, PGUSER (a superuser, trust authentication) of a running cluster with
the extension installed; DFD_GATEWAY overrides the binary (as in gateway/test_e2e.py).
Usage: soak_load.py SECONDS      prints the table, then "soak: N passed, N failed"; exit 1 on a failure.
"""
import http.client
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import test_e2e as e2e  # noqa: E402  (its helpers: Gateway, gateway_env, free_port, psql)

DB = "dfd_soak"
DB_ROLE = "dfd_soak_gateway"
GATEWAY_THREADS = 4
# the gateway's database connections: one per server thread, plus the checkpoint signer's, the
# mail thread's and the share count thread's (gateway/server.c starts exactly those three)
POOL = GATEWAY_THREADS + 3
SAMPLE_SECONDS = 10
TIMEOUT = 15  # one HTTP call; a hang is an error, never a stuck soak
# RSS may grow this much between the warm-up sample and the end: glibc keeps freed memory in
# per-thread arenas (4 server threads, signer, mail) and libpq/jansson buffers grow to the largest
# answer seen (receipt pages, proofs of a growing tree) before they plateau. Measured (scripts/soak
# 600, plain build, 12,338 requests): 12,152 kB after warm-up, 12,204 kB at the end, never more
# than +60 kB in between; 1 MiB is twenty times that. It still catches a leak of ~90 bytes per
# request in the 10-minute run, ~2.5 kB per request in the 30 s CI run (about 400 requests after
# its warm-up). 5% lets a larger process (another allocator, a sanitized build) keep the margin.
RSS_BOUND_FRACTION = 0.05
RSS_BOUND_MIN_KB = 1024
# set by scripts/soak with DFD_SOAK_VALGRIND=1: the directory of the gateway's valgrind log
VALGRIND_LOGS = os.environ.get("DFD_SOAK_VALGRIND_LOGS", "")

# one check: test_e2e's counters and output, with every passing check listed too (the soak's
# samples are read by people)
e2e.VERBOSE = True
record = e2e.record


def psql(sql, db=DB):
    return e2e.psql(sql, db=db).strip()


class Stats:
    """Requests and errors of every worker, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.by_op = {}
        self.error_lines = []

    def done(self, op, ok, detail=""):
        with self.lock:
            self.requests += 1
            self.by_op[op] = self.by_op.get(op, 0) + 1
            if not ok:
                self.errors += 1
                if len(self.error_lines) < 20:
                    self.error_lines.append("%s: %s" % (op, detail))

    def snapshot(self):
        with self.lock:
            return self.requests, self.errors


class Client:
    """One keep-alive connection, as a real client holds it. A transport error is counted and the
    connection replaced; the gateway closing a kept-alive connection by itself would be one."""

    def __init__(self, port, stats, source=None):
        self.port, self.stats, self.source = port, stats, source
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, op, method, path, expect, body=None, token=None):
        """Returns (status, parsed JSON or None, raw body); status 0 on a transport error."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT,
                                                   source_address=(self.source, 0) if self.source else None)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            raw = r.read()
            status = r.status
            if (r.getheader("Connection") or "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            self.stats.done(op, False, "transport error: %r" % e)
            return 0, None, b""
        parsed = None
        try:
            parsed = json.loads(raw) if raw[:1] in (b"{", b"[") else None
        except ValueError:
            pass
        ok = status in expect and status < 500
        self.stats.done(op, ok, "%s %s -> %d (want %s) %s" % (method, re.sub(r"df[sm]_[\w-]+", "<token>", path),
                                                             status, expect, raw[:200]))
        return status, parsed, raw


class Shared:
    """What the workers learn from each other: receipts written and live shares."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seqs = []
        self.shares = []  # (share_id, token), oldest first

    def add_seq(self, seq):
        with self.lock:
            self.seqs.append(seq)

    def pick_seq(self, n):
        with self.lock:
            return self.seqs[n % len(self.seqs)] if self.seqs else None

    def last_seq(self):
        with self.lock:
            return self.seqs[-1] if self.seqs else 0

    def pick_share(self, n):
        with self.lock:
            return self.shares[n % len(self.shares)] if self.shares else None


def paced(stop, interval, step):
    """Calls step(n) every `interval` seconds until stop is set. When behind (a slow answer on a
    busy machine), it starts again from now rather than bursting to catch up: the rate stays
    bounded."""
    n = 0
    next_t = time.monotonic()
    while not stop.is_set():
        step(n)
        n += 1
        next_t += interval
        delay = next_t - time.monotonic()
        if delay < 0:
            next_t = time.monotonic()
        elif stop.wait(delay):
            break


def writer(c, stats, shared, stop):
    """API-key appends; every 4th receipt is shared; past 8 live shares the oldest is revoked and
    its link must answer 404 from then on (from about 10 s into the run)."""
    cl = Client(c.port, stats)

    def step(n):
        st, j, _ = cl.call("append", "POST", "/receipts", (201,),
                           {"kind": "soak.item", "fields": {"n": n, "note": "steady %d" % n}, "public_fields": ["n"]},
                           token=c.api_key)
        if st != 201 or not j:
            return
        shared.add_seq(j["seq"])
        if n % 4 == 0:
            st, j, _ = cl.call("share", "POST", "/receipts/%d/share?org=%s" % (j["seq"], c.org), (201,),
                               {"ttl_hours": 1}, token=c.jwt)
            if st == 201 and j:
                with shared.lock:
                    shared.shares.append((j["share_id"], j["token"]))
                    old = shared.shares.pop(0) if len(shared.shares) > 8 else None
                if old:
                    cl.call("share revoke", "DELETE", "/shares/" + old[0], (204,), token=c.jwt)
                    cl.call("revoked share link", "GET", "/share/" + old[1], (404,))

    paced(stop, 0.25, step)
    cl.close()


def reader(c, stats, shared, stop, offset):
    cl = Client(c.port, stats)

    def step(n):
        n += offset
        seq = shared.pick_seq(n * 7)
        op = n % 11
        if op == 0:
            cl.call("healthz", "GET", "/healthz", (200,))
        elif op == 1:
            after = max(0, shared.last_seq() - 50)
            cl.call("receipt page", "GET", "/receipts?org=%s&limit=50&after=%d" % (c.org, after), (200,), token=c.jwt)
        elif op == 2 and seq:
            cl.call("receipt", "GET", "/receipts/%d?org=%s" % (seq, c.org), (200,), token=c.jwt)
        elif op == 3:
            share = shared.pick_share(n)
            if share:
                # a share picked here may be revoked by the writer before this GET lands
                st, j, _ = cl.call("share link", "GET", "/share/" + share[1], (200, 404))
                if st == 200 and not (j and j.get("checkpoint")):
                    stats.done("share link", False, "bundle without a checkpoint")
        elif op == 4 and seq:
            cl.call("proof", "GET", "/ledger/proof/%d?org=%s" % (seq, c.org), (200,), token=c.jwt)
        elif op == 5:
            cl.call("checkpoint", "GET", "/ledger/checkpoint?org=" + c.org, (200,), token=c.jwt)
        elif op == 6:
            st, j, _ = cl.call("ledger verify", "GET", "/ledger/verify?org=" + c.org, (200,), token=c.jwt)
            if st == 200 and not (j and j.get("ok") is True):
                stats.done("ledger verify", False, "verify says not ok: %r" % j)
        elif op == 7:
            cl.call("me", "GET", "/me", (200,), token=c.jwt)
        elif op == 8:
            cl.call("ledger keys", "GET", "/ledger/keys", (200,))
        elif op == 9:
            cl.call("metrics", "GET", "/metrics", (200,))
        else:
            cl.call("readyz", "GET", "/readyz", (200,))

    paced(stop, 0.25, step)
    cl.close()


def owner(c, stats, shared, stop):
    """Key management as an owner does it, and the answers a client gets wrong now and then."""
    cl = Client(c.port, stats)
    state = {}

    def step(n):
        op = n % 6
        if op == 0:
            st, j, _ = cl.call("key create", "POST", "/orgs/%s/api-keys" % c.org, (201,), {"name": "soak %d" % n},
                               token=c.jwt)
            state["key"] = (j or {}).get("key"), (j or {}).get("key_id")
        elif op == 1 and state.get("key", (None,))[0]:
            cl.call("append (new key)", "POST", "/receipts", (201,), {"kind": "soak.key", "fields": {"n": n}},
                    token=state["key"][0])
        elif op == 2 and state.get("key", (None,))[0]:
            cl.call("key revoke", "DELETE", "/orgs/%s/api-keys/%s" % (c.org, state["key"][1]), (204,), token=c.jwt)
            cl.call("append (revoked key)", "POST", "/receipts", (401,), {"kind": "soak.key", "fields": {}},
                    token=state["key"][0])
            state.pop("key")
        elif op == 3:
            cl.call("org", "GET", "/orgs/" + c.org, (200,), token=c.jwt)
            cl.call("members", "GET", "/orgs/%s/members" % c.org, (200,), token=c.jwt)
        elif op == 4:
            cl.call("unknown receipt", "GET", "/receipts/999999999?org=" + c.org, (404,), token=c.jwt)
            cl.call("bad body", "POST", "/receipts", (422,), {"kind": "x", "fields": []}, token=c.api_key)
        else:
            cl.call("unknown share", "GET", "/share/dfs_" + e2e.b64url(secrets.token_bytes(32)), (404,))

    paced(stop, 0.5, step)
    cl.close()


def read_link(mail_dir, email, seconds):
    """The magic-link token mailed to email (its file removed, so MAIL_DIR stays small)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in os.listdir(mail_dir) if os.path.isdir(mail_dir) else []:
            path = os.path.join(mail_dir, name)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            m_to = re.search(r"^To: <([^>]*)>", text, re.M)
            m_link = re.search(r"https?://\S+/auth/magic\?token=(\S+)", text)
            if m_to and m_link and m_to.group(1) == email:
                os.unlink(path)
                return m_link.group(1)
        time.sleep(0.2)
    return None


def magic_user(c, stats, shared, stop):
    """A new user every cycle: request a link, read it, open its page, post it, use the session.
    POST /auth/request allows 5 per IP per 10 minutes: each loopback address (127.1.x.y) serves 4
    cycles and is never used again, so no answer here may be a 429."""
    state = {"cl": None}

    def step(n):
        if n % 4 == 0:
            if state["cl"]:
                state["cl"].close()
            ip = "127.1.%d.%d" % (n // 4 // 250, n // 4 % 250 + 1)
            state["cl"] = Client(c.port, stats, source=ip)
        cl = state["cl"]
        email = "soak-%d-%s@example.test" % (n, c.run_id)
        st, _, _ = cl.call("auth request", "POST", "/auth/request", (202,), {"email": email})
        if st != 202:
            return
        token = read_link(c.mail_dir, email, 15)
        if token is None:
            stats.done("magic link mailed", False, "no mail to %s within 15 s" % email)
            return
        stats.done("magic link mailed", True)
        cl.call("magic page", "GET", "/auth/magic?token=" + urllib.parse.quote(token), (200,))
        st, j, _ = cl.call("auth verify", "POST", "/auth/verify", (200,), {"token": token})
        if st == 200 and j:
            cl.call("me (new user)", "GET", "/me", (200,), token=j["token"])

    paced(stop, 2.0, step)
    if state["cl"]:
        state["cl"].close()


# ---------------------------------------------------------------------------------------------
# What the gateway holds

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return int(out["VmRSS"].split()[0]), int(out["Threads"])


def client_socket_inodes(port):
    """Inodes of TCP sockets whose local port is the gateway's and that are not listening: the
    accepted client connections (IPv4 and IPv6 tables)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local_port = int(cols[1].rsplit(":", 1)[1], 16)
                    if local_port == port and cols[3] != "0A":  # 0A: LISTEN
                        inodes.add(cols[9])
        except OSError:
            pass
    return inodes


def fd_counts(pid, port):
    """(all fds, client connections among them)."""
    clients = client_socket_inodes(port)
    total = conns = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed while we looked
        total += 1
        m = re.match(r"socket:\[(\d+)\]$", target)
        if m and m.group(1) in clients:
            conns += 1
    return total, conns


def own_fds(pid, port):
    """The gateway's fds that are not client connections, read three times 0.2 s apart: a file the
    mail thread has open for a moment is not a leak, and a leak shows in every read."""
    vals = []
    for _ in range(3):
        total, conns = fd_counts(pid, port)
        vals.append(total - conns)
        time.sleep(0.2)
    return min(vals)


def backends():
    return int(psql("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'" % DB_ROLE, db="postgres"))


class Sampler(threading.Thread):
    """The 10-second table, and pg_stat_activity every second for the pool bound."""

    def __init__(self, c, stats, stop):
        super().__init__(daemon=True)
        self.c, self.stats, self.stop_ev = c, stats, stop
        self.rows = []
        self.max_backends = 0
        self.failure = None

    def sample(self, t):
        rss, threads = proc_status(self.c.pid)
        total, conns = fd_counts(self.c.pid, self.c.port)
        row = {"t": t, "rss": rss, "fds": total, "conns": conns, "own": own_fds(self.c.pid, self.c.port),
               "threads": threads, "backends": backends()}
        row["requests"], row["errors"] = self.stats.snapshot()
        self.max_backends = max(self.max_backends, row["backends"])
        self.rows.append(row)
        print("%6d %10d %5d %6d %6d %8d %9d %9d %7d" % (row["t"], row["rss"], row["fds"], row["conns"], row["own"],
                                                         row["threads"], row["backends"], row["requests"], row["errors"]))
        sys.stdout.flush()

    def run(self):
        try:
            t0 = time.monotonic()
            print("%6s %10s %5s %6s %6s %8s %9s %9s %7s" % ("t(s)", "VmRSS(kB)", "fds", "conns", "ownfd", "threads",
                                                             "backends", "requests", "errors"))
            self.sample(0)
            next_sample = SAMPLE_SECONDS
            while not self.stop_ev.wait(1.0):
                self.max_backends = max(self.max_backends, backends())
                elapsed = time.monotonic() - t0
                if elapsed >= next_sample:
                    self.sample(int(round(elapsed)))
                    next_sample += SAMPLE_SECONDS
        except Exception:
            self.failure = traceback.format_exc()


# ---------------------------------------------------------------------------------------------

def setup(c):
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")
    psql("CREATE DATABASE %s" % DB, db="postgres")
    psql("CREATE EXTENSION defendable")  # creates the defendable_gateway role granted below
    psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$"
         % (DB_ROLE, DB_ROLE), db="postgres")
    psql("ALTER ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; GRANT defendable_gateway TO %s"
         % (DB_ROLE, DB_ROLE), db="postgres")
    c.port = e2e.free_port()
    c.base = "http://127.0.0.1:%d" % c.port
    dsn = "host=%s port=%s dbname=%s user=%s" % (os.environ["PGHOST"], os.environ["PGPORT"], DB, DB_ROLE)
    env = e2e.gateway_env(c, c.port, dsn, {"GATEWAY_THREADS": str(GATEWAY_THREADS), "MAIL_DIR": c.mail_dir})
    c.gw = e2e.Gateway("soak", env, c.tmp)
    if not c.gw.wait_healthy(20):
        raise RuntimeError("the gateway did not start:\n" + c.gw.log_text()[-1500:])
    c.pid = c.gw.proc.pid
    # one owner session through a real magic link, an organization and an API key
    stats = Stats()
    cl = Client(c.port, stats)
    email = "owner-%s@example.test" % c.run_id
    cl.call("setup", "POST", "/auth/request", (202,), {"email": email})
    token = read_link(c.mail_dir, email, 15)
    if token is None:
        raise RuntimeError("no magic link mailed to the owner")
    _, j, _ = cl.call("setup", "POST", "/auth/verify", (200,), {"token": token})
    c.jwt = (j or {}).get("token")
    _, j, _ = cl.call("setup", "POST", "/orgs", (201,), {"name": "Soak"}, token=c.jwt)
    c.org = (j or {}).get("org_id")
    _, j, _ = cl.call("setup", "POST", "/orgs/%s/api-keys" % c.org, (201,), {"name": "soak writer"}, token=c.jwt)
    c.api_key = (j or {}).get("key")
    cl.close()
    if stats.errors or not (c.jwt and c.org and c.api_key):
        raise RuntimeError("setup failed: %s" % stats.error_lines)


def fill_pool(c):
    """Each server thread connects to the database on its first request that needs it, and new TCP
    connections go to whichever thread accepts first: a few threads at once open fresh
    connections asking /readyz (a database round trip) until all POOL backends exist, so that the
    warm-up count is the whole pool and not however many threads the load happened to reach."""
    stats = Stats()

    def ping():
        for _ in range(5):
            cl = Client(c.port, stats)
            cl.call("readyz", "GET", "/readyz", (200,))
            cl.close()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and backends() < POOL:
        pingers = [threading.Thread(target=ping) for _ in range(GATEWAY_THREADS * 2)]
        for t in pingers:
            t.start()
        for t in pingers:
            t.join()
        time.sleep(0.3)
    return backends(), stats.errors


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    if seconds < 30:
        print("soak: at least 30 seconds (a warm-up and two samples after it)")
        print("soak: 0 passed, 1 failed")
        return 1
    # warm-up: allocator arenas, libpq buffers and every thread's database connection settle
    warmup = 30 if seconds >= 120 else 10
    for v in ("PGHOST", "PGPORT", "PGUSER"):
        if not os.environ.get(v):
            print("soak: %s is not set" % v)
            print("soak: 0 passed, 1 failed")
            return 1
    c = e2e.Ctx()
    c.tmp = tempfile.mkdtemp(prefix="dfd-soak-")
    c.mail_dir = os.path.join(c.tmp, "mail")
    c.jwt_secret = secrets.token_urlsafe(48)
    c.run_id = secrets.token_hex(3)
    c.gw = None
    judged = False
    try:
        setup(c)
        print("soak: %d s of mixed load on %s (gateway pid %d, %d threads, pool %d), warm-up %d s"
              % (seconds, c.base, c.pid, GATEWAY_THREADS, POOL, warmup))
        n, errors = fill_pool(c)
        if not record(n == POOL and errors == 0, "every connection of the pool is open before the load (%d of %d)"
                      % (n, POOL)):
            raise RuntimeError("the pool did not fill")
        stats, shared, stop = Stats(), Shared(), threading.Event()
        sampler = Sampler(c, stats, stop)
        # daemons: an interrupted soak must still stop its gateway and drop its database
        workers = [threading.Thread(target=writer, args=(c, stats, shared, stop), daemon=True),
                   threading.Thread(target=reader, args=(c, stats, shared, stop, 0), daemon=True),
                   threading.Thread(target=reader, args=(c, stats, shared, stop, 5), daemon=True),
                   threading.Thread(target=owner, args=(c, stats, shared, stop), daemon=True),
                   threading.Thread(target=magic_user, args=(c, stats, shared, stop), daemon=True)]
        sampler.start()
        for w in workers:
            w.start()
        time.sleep(seconds)
        # the last sample is taken under load, like the warm-up one it is compared with
        t_end = sampler.rows[-1]["t"] if sampler.rows else 0
        while sampler.rows and sampler.rows[-1]["t"] == t_end and sampler.is_alive():
            time.sleep(0.2)
        stop.set()
        for w in workers:
            w.join(60)
        sampler.join(30)
        judge(c, stats, sampler, warmup, len(workers))
        judged = True
    except Exception:
        record(False, "soak setup or run", traceback.format_exc())
    except KeyboardInterrupt:
        record(False, "soak interrupted")
    finally:
        if c.gw is not None:
            c.gw.stop()
            if VALGRIND_LOGS and judged:
                valgrind_clean(c)
        if e2e.FAILED and c.gw is not None:
            print("---- gateway log (last lines)")
            print("\n".join(c.gw.log_text().rstrip("\n").split("\n")[-15:]))
        e2e.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres", check=False)
        shutil.rmtree(c.tmp, ignore_errors=True)
    print("soak: %d passed, %d failed" % (e2e.PASSED, e2e.FAILED))
    return 1 if e2e.FAILED else 0


def valgrind_clean(c):
    """The gateway ran under valgrind memcheck (scripts/soak with DFD_SOAK_VALGRIND=1): it left
    through SIGTERM with valgrind's status 0 (99 is a report), and the log ends with the leak check
    and an error summary of zero, so the check did run at exit."""
    logs = [os.path.join(VALGRIND_LOGS, n) for n in sorted(os.listdir(VALGRIND_LOGS))] if os.path.isdir(VALGRIND_LOGS) else []
    text = ""
    for path in logs:
        with open(path, errors="replace") as f:
            text += f.read()
    record(c.gw.proc.returncode == 0 and len(logs) == 1 and "LEAK SUMMARY" in text and
           re.search(r"ERROR SUMMARY: 0 errors", text),
           "valgrind memcheck: no error and no definitely or indirectly lost block at the gateway's exit "
           "(exit %s)" % c.gw.proc.returncode, text[-3000:])
    for line in text.split("\n"):
        if "total heap usage" in line or "definitely lost" in line:
            print("    " + line.split("== ", 1)[-1].strip())


def judge(c, stats, sampler, warmup, n_workers):
    rows = sampler.rows
    record(sampler.failure is None, "the sampler ran throughout", sampler.failure)
    after = [r for r in rows if r["t"] >= warmup]
    if not record(len(after) >= 2, "at least two samples after the warm-up", rows):
        return
    base, end = after[0], rows[-1]
    print("requests by kind: " + ", ".join("%s %d" % kv for kv in sorted(stats.by_op.items())))
    print("start (t=%d s): VmRSS %d kB, fds %d (own %d), backends %d; end (t=%d s): VmRSS %d kB, fds %d (own %d), "
          "backends %d; %d requests, %d errors, %.1f requests/s"
          % (base["t"], base["rss"], base["fds"], base["own"], base["backends"], end["t"], end["rss"], end["fds"],
             end["own"], end["backends"], stats.requests, stats.errors, stats.requests / max(1, end["t"])))
    kinds = ("append", "share", "share revoke", "revoked share link", "healthz", "receipt page", "receipt",
             "share link", "proof", "checkpoint", "ledger verify", "me", "key create", "key revoke",
             "append (revoked key)", "unknown receipt", "auth request", "magic link mailed", "auth verify",
             "me (new user)")
    missing = [k for k in kinds if not stats.by_op.get(k)]
    record(not missing, "every kind of request of the mix ran", missing)
    record(stats.errors == 0, "zero errors (5xx, unexpected status, transport error) in %d requests" % stats.requests,
           "\n".join(stats.error_lines))
    record(c.gw.proc.poll() is None, "the gateway is still running")
    if VALGRIND_LOGS:
        # valgrind's own memory grows with the code it translates and its queue of freed blocks
        # (20 MB): under it, leaks are judged by its leak check at exit instead (valgrind_clean)
        print("RSS not judged under valgrind: %d kB after warm-up, %d kB at the end" % (base["rss"], end["rss"]))
    else:
        bound = max(int(base["rss"] * RSS_BOUND_FRACTION), RSS_BOUND_MIN_KB)
        record(end["rss"] <= base["rss"] + bound,
               "flat RSS: %d kB at the end, %d kB after warm-up, bound +%d kB (max of +5%%, +1 MiB)"
               % (end["rss"], base["rss"], bound))
    record(end["own"] == base["own"], "the gateway's own fds (all but client connections): %d at the end, %d after warm-up"
           % (end["own"], base["own"]))
    # each worker holds one keep-alive connection; the magic-link worker may hold a second for a
    # moment when it moves to its next source address
    record(end["conns"] <= n_workers + 1 and end["fds"] <= base["own"] + n_workers + 1,
           "fds at the end (%d) within the own fds (%d) + the clients' connections (at most %d)"
           % (end["fds"], base["own"], n_workers + 1), end)
    # the clients have left: every connection must be closed by the gateway, not kept
    deadline = time.monotonic() + 10
    conns = fd_counts(c.pid, c.port)[1]
    while conns and time.monotonic() < deadline:
        time.sleep(0.2)
        conns = fd_counts(c.pid, c.port)[1]
    record(conns == 0, "every client connection is closed once the clients left (%d left open)" % conns)
    record(sampler.max_backends <= POOL, "the gateway role's backends never above the pool of %d (max seen %d)"
           % (POOL, sampler.max_backends))
    record(end["backends"] == base["backends"], "the gateway role's backends at the end (%d) equal the warm-up count (%d)"
           % (end["backends"], base["backends"]))
    bad = psql("SELECT count(*) FILTER (WHERE NOT ok) || ' ' || count(*) FROM defendable.verify_ledger()")
    record(bad.split()[0] == "0" and int(bad.split()[1]) >= 1, "verify_ledger(): every organization ok (bad, orgs: %s)" % bad)
    errors = [l for l in c.gw.log_lines() if '"level":"error"' in l]
    record(not errors, "the gateway logged no error", "\n".join(errors[:5]))


if __name__ == "__main__":
    sys.exit(main())
