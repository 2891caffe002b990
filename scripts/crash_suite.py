#!/usr/bin/env python3
"""The crash suite (issue 9, crash part). Started by scripts/check-crash on its own cluster.

Python 3 standard library only (and Debian's python3-aiosmtpd, through gateway/test_e2e.py).

Load: 8 concurrent appenders. Four call defendable.append_receipt directly (one psql process
each, statements on stdin, the returned seq|hash read back), four go through the gateway
(POST /receipts with an API key). The org "shared" has four of them (two direct, two through
the gateway); four other orgs have one each. Two more clients ask for magic links
(POST /auth/request, which writes a token and an email_outbox row in one transaction), each with
a fresh address; the gateway's mail thread delivers them to an SMTP server (aiosmtpd) on
loopback. Every append carries a unique marker; a client logs (org, seq, hash, marker) only after
the commit came back to it.

Rounds: the load runs, then after a random delay (seeded: --seed reproduces the schedule) either
  * the postmaster gets SIGKILL, alone (its backends finish what they were doing and exit on
    their own) or with every backend at once (the whole server dies mid-statement), then the
    cluster is restarted with pg_ctl (crash recovery); or
  * the gateway gets SIGKILL mid-request, then a new gateway is started on the same port.
After each round, on the recovered database:
  ledger  every acknowledged append is present with its seq, hash and marker; per org the seqs
          are 1..head with no gap or duplicate; each prev is the previous hash (one chain, no
          fork); verify_ledger() and verify_disclosures() are all ok; each head is the last
          receipt; merkle_root() equals an RFC 9162 root computed here from the receipt hashes;
          no marker was appended twice; no client saw an error other than the outage's.
  mail    tokens and outbox rows come in pairs (and every acknowledged request has both); no
          Message-ID reaches the SMTP server twice; once the gateway drained the outbox, every
          message is either sent (delivered exactly once) or, if its sender died mid-send,
          given up with an email.failed security event (never left pending); at most one
          message per kill is given up without having been delivered.
A message whose sender died mid-send stays claimed for 10 minutes before it is given up
(outbox_claim's stale_after): the suite moves those claims 11 minutes back instead of waiting.

Usage: crash_suite.py --pgdata DIR --server-log FILE --workdir DIR [--rounds N]
       [--gateway-rounds N] [--full] [--seed S]
Environment: PGHOST, PGPORT, PGUSER (a superuser) of the cluster in --pgdata.
Prints "crash: N passed, N failed" last, exits 1 on a failure.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import test_e2e as e2e  # noqa: E402  (the gateway runner, the SMTP sink, RFC 9162 roots)

DB = "dfd_crash"
ROLE = "dfd_crash_gateway"
MAIL_DOMAIN = "crash.test"
PASSED = 0
FAILED = 0
VERBOSE = bool(os.environ.get("DFD_CRASH_VERBOSE"))

# What a client may see while the server is down or restarting; anything else is a finding.
OUTAGE_ERRORS = re.compile(
    r"server closed the connection unexpectedly|connection to server .* failed|"
    r"could not connect|the database system is (starting up|shutting down|in recovery mode|"
    r"not yet accepting connections|not accepting connections)|"
    r"terminating connection because of crash|terminating connection due to unexpected postmaster exit|no connection to the server|"
    r"could not receive data from server|could not send data to server|"
    r"Consistent recovery state has not been yet reached|This probably means|"
    r"before or while processing the request|connection to server was lost|"
    r"SSL SYSCALL error|Connection refused|No such file or directory|Is the server running|"
    r"server process was terminated|terminated by signal|lost synchronization", re.I)


def record(cond, what, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        if VERBOSE:
            print("ok   " + what)
    else:
        FAILED += 1
        print("FAIL " + what)
        if detail:
            for line in str(detail).split("\n")[:20]:
                print("    " + line[:300])
    sys.stdout.flush()
    return bool(cond)


def sql(text, db=DB, check=True):
    return e2e.psql(text, db=db, check=check)


def as_pg(argv):
    """PostgreSQL refuses to run as root: the cluster's programs run as the postgres user."""
    return (["runuser", "-u", "postgres", "--"] + argv) if os.getuid() == 0 else argv


# ---------------------------------------------------------------------------------------------
# What the clients were told

class Journal:
    """Every acknowledged append and magic-link request, and every error a client saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []           # (org, seq, hash hex, marker, client, round, acked after the kill)
        self.attempted = set()    # markers sent, acknowledged or not
        self.mail_acked = set()   # addresses whose /auth/request answered 202
        self.mail_tried = set()
        self.odd = []             # (client, what): answers or errors an outage does not explain
        self.in_flight = 0        # requests sent and not yet answered
        self.kill_at = None       # monotonic time of this round's kill
        self.missing = 0          # acknowledged appends not found as acknowledged, last check

    def ack(self, org, seq, hsh, marker, client, rnd):
        with self.lock:
            late = self.kill_at is not None
            self.acked.append((org, int(seq), hsh, marker, client, rnd, late))

    def add_odd(self, client, what):
        with self.lock:
            self.odd.append((client, what))

    def begin(self):
        with self.lock:
            self.in_flight += 1

    def end(self):
        with self.lock:
            self.in_flight -= 1


class Client(threading.Thread):
    def __init__(self, name, journal, rnd):
        super().__init__(daemon=True)
        self.name_, self.journal, self.rnd = name, journal, rnd
        self.stop_flag = threading.Event()
        self.n = 0
        self.errors = 0

    def marker(self):
        self.n += 1
        return "%s-r%d-%d" % (self.name_, self.rnd, self.n)

    def stop(self):
        self.stop_flag.set()


class DirectAppender(Client):
    """append_receipt through one long-lived psql; a new one after each lost connection."""

    def __init__(self, name, journal, rnd, org, workdir):
        super().__init__(name, journal, rnd)
        self.org = org
        self.err_path = os.path.join(workdir, "%s.r%d.stderr" % (name, rnd))
        self.proc = None

    def spawn(self):
        err = open(self.err_path, "a")
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", DB],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        err.close()

    def drop(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.kill()  # our own psql child, by its handle
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    def run(self):
        while not self.stop_flag.is_set():
            if self.proc is None:
                self.spawn()
            m = self.marker()
            stmt = ("SELECT seq || '|' || encode(hash, 'hex') FROM defendable.append_receipt("
                    "'%s', 'crash.append', '{\"marker\": \"%s\", \"client\": \"%s\"}', '{marker}');\n"
                    % (self.org, m, self.name_))
            with self.journal.lock:
                self.journal.attempted.add(m)
            self.journal.begin()
            line = ""
            try:
                self.proc.stdin.write(stmt)
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            finally:
                self.journal.end()
            got = re.fullmatch(r"(\d+)\|([0-9a-f]{64})", line.strip())
            if got:
                self.journal.ack(self.org, got.group(1), got.group(2), m, self.name_, self.rnd)
            else:
                # psql stops at the first error or lost connection; its stderr says which
                self.errors += 1
                self.drop()
                time.sleep(0.05)
        self.drop()


def http_call(port, method, path, body, token=None, source=None, timeout=10):
    """One request on a fresh connection: (status, parsed JSON or None); status 0 = no answer."""
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=json.dumps(body).encode(), headers=hdrs)
        r = c.getresponse()
        data = r.read()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return r.status, doc
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        c.close()


class Checkpointer(Client):
    """CHECKPOINT now and then, so that some kills land while dirty pages are being written
    (crash recovery then starts from an older redo point over half-written data files)."""

    def __init__(self, name, journal, rnd):
        super().__init__(name, journal, rnd)
        self.running = False
        self.done = 0

    def run(self):
        while not self.stop_flag.is_set():
            self.running = True
            p = subprocess.run(["psql", "-X", "-q", "-d", DB, "-c", "CHECKPOINT"], capture_output=True, text=True)
            self.running = False
            if p.returncode == 0:
                self.done += 1
            elif not OUTAGE_ERRORS.search(p.stderr):
                self.journal.add_odd(self.name_, p.stderr.strip())
            self.stop_flag.wait(0.4)


class GatewayAppender(Client):
    """POST /receipts with the org's API key."""

    def __init__(self, name, journal, rnd, org, key, port):
        super().__init__(name, journal, rnd)
        self.org, self.key, self.port = org, key, port

    def run(self):
        while not self.stop_flag.is_set():
            m = self.marker()
            with self.journal.lock:
                self.journal.attempted.add(m)
            self.journal.begin()
            try:
                status, doc = http_call(self.port, "POST", "/receipts",
                                        {"kind": "crash.append", "fields": {"marker": m, "client": self.name_},
                                         "public_fields": ["marker"]}, token=self.key)
            finally:
                self.journal.end()
            if status == 201 and doc and re.fullmatch(r"[0-9a-f]{64}", str(doc.get("hash"))):
                if doc.get("org_id") != self.org:
                    self.journal.add_odd(self.name_, "201 for another org: %s" % doc)
                self.journal.ack(doc.get("org_id"), doc.get("seq"), doc.get("hash"), m, self.name_, self.rnd)
                continue
            self.errors += 1
            # 503 (database down or restarting) and no answer (gateway down) are the outage
            if status not in (0, 503):
                self.journal.add_odd(self.name_, "POST /receipts -> %s %s" % (status, doc))
            time.sleep(0.05)


class MailRequester(Client):
    """POST /auth/request for a fresh address each time, from a rotating loopback address (the
    route allows 5 per IP per 10 minutes)."""

    def __init__(self, name, journal, rnd, port, first_ip):
        super().__init__(name, journal, rnd)
        self.port, self.ip = port, first_ip

    def run(self):
        while not self.stop_flag.is_set():
            email = "%s@%s" % (self.marker(), MAIL_DOMAIN)
            self.ip = 2 + (self.ip - 1) % 253  # 127.0.0.2 .. 127.0.0.254
            with self.journal.lock:
                self.journal.mail_tried.add(email)
            self.journal.begin()
            try:
                status, doc = http_call(self.port, "POST", "/auth/request", {"email": email},
                                        source="127.0.0.%d" % self.ip)
            finally:
                self.journal.end()
            if status == 202:
                with self.journal.lock:
                    self.journal.mail_acked.add(email)
            else:
                self.errors += 1
                if status not in (0, 503):
                    self.journal.add_odd(self.name_, "POST /auth/request -> %s %s" % (status, doc))
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# The cluster and the gateway

class Cluster:
    def __init__(self, pgdata, log):
        self.pgdata, self.log = pgdata, log

    def postmaster_pid(self):
        with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
            return int(f.readline())

    @staticmethod
    def children(pid):
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            # the command may hold spaces and parentheses: the fields after the last ')'
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        return out

    @staticmethod
    def alive(pid):
        # a zombie counts: until its parent reaps it, kill(pid, 0) succeeds and a new
        # postmaster takes the lock file's PID for a running server
        return os.path.exists("/proc/%d" % pid)

    def kill(self, whole_server):
        """SIGKILL the postmaster (and, if whole_server, every backend at the same moment).
        The postmaster is stopped first so that no backend is forked between listing its
        children and the kill. Returns (children, seconds until the last one was gone)."""
        pm = self.postmaster_pid()
        os.kill(pm, signal.SIGSTOP)
        kids = self.children(pm)
        os.kill(pm, signal.SIGKILL)
        if whole_server:
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        t0 = time.monotonic()
        # backends left alone notice the postmaster's death and exit: a restart must wait for
        # them (shared memory still attached is refused)
        while any(self.alive(p) for p in kids + [pm]):
            if time.monotonic() - t0 > 60:
                for k in kids:
                    if self.alive(k):
                        os.kill(k, signal.SIGKILL)
            time.sleep(0.02)
        return len(kids), time.monotonic() - t0

    def start(self):
        t0 = time.monotonic()
        p = subprocess.run(as_pg(["pg_ctl", "-D", self.pgdata, "-l", self.log, "-w", "-t", "300", "start"]),
                           capture_output=True, text=True)
        return p.returncode == 0, time.monotonic() - t0, p.stdout + p.stderr


class GatewayProc:
    def __init__(self, workdir, port, smtp_port, jwt_secret):
        self.workdir, self.port, self.n = workdir, port, 0
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": "host=%s port=%s dbname=%s user=%s" % (os.environ["PGHOST"], os.environ["PGPORT"], DB, ROLE),
            "PORT": str(port), "ENV": "development", "GATEWAY_THREADS": "4", "JWT_SECRET": jwt_secret,
            "API_BASE_URL": "http://127.0.0.1:%d" % port, "APP_BASE_URL": "http://127.0.0.1:%d" % port,
            "SMTP_URL": "smtp://127.0.0.1:%d" % smtp_port, "MAIL_FROM": "defendable <no-reply@crash.test>",
        }
        self.gw = None

    def start(self):
        self.n += 1
        self.gw = e2e.Gateway("gateway-%d" % self.n, dict(self.env), self.workdir)
        return self.gw.wait_healthy(20)

    def kill(self):
        self.gw.proc.kill()  # SIGKILL, by the handle of the process we started
        self.gw.proc.wait()
        self.gw.log_file.close()

    def stop(self):
        if self.gw is not None:
            self.gw.stop(wait=15)


# ---------------------------------------------------------------------------------------------
# Checks

class SmtpSink:
    """aiosmtpd on loopback that takes DATA_DELAY to accept each message, as a real relay over a
    network does: the mail thread then spends a realistic share of its time mid-send, which is
    where a kill can lose or repeat a message."""

    DATA_DELAY = 0.05

    def __init__(self):
        import asyncio
        from aiosmtpd.controller import Controller
        outer = self
        self.messages = []  # (mail_from, rcpt_tos, data)

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                await asyncio.sleep(SmtpSink.DATA_DELAY)
                outer.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 2.0.0 queued"

        self.port = e2e.free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def rfc9162_root(hashes):
    return e2e.merkle_root([hashlib.sha256(b"\x00" + h).digest() for h in hashes])


def check_ledger(tag, journal, orgs, odd_before):
    rows = sql("SELECT r.org_id, r.seq, encode(r.hash, 'hex'), encode(r.prev, 'hex'), "
               "coalesce(d.field_values->>'marker', '') FROM defendable.receipts r "
               "LEFT JOIN defendable.disclosures d USING (org_id, seq) ORDER BY r.org_id, r.seq")
    chains = {}
    for line in rows.split("\n"):
        if line:
            org, seq, h, prev, marker = line.split("|")
            chains.setdefault(org, []).append((int(seq), h, prev, marker))
    stored = {(org, seq): (h, marker) for org, chain in chains.items() for seq, h, _, marker in chain}

    with journal.lock:
        acked = list(journal.acked)
        attempted = set(journal.attempted)
        odd = journal.odd[odd_before:]
    wrong = [a for a in acked if stored.get((a[0], a[1])) != (a[2], a[3])]
    journal.missing = len(wrong)
    record(not wrong, "%s: all %d acknowledged appends present with their seq, hash and marker" % (tag, len(acked)),
           "\n".join("%s seq %d: acknowledged %s %s, stored %s (client %s, round %d, after kill %s)"
                     % (a[0], a[1], a[2][:16], a[3], stored.get((a[0], a[1])), a[4], a[5], a[6]) for a in wrong[:10]))

    gaps = ["%s: seqs %s..., %d rows, last %d" % (org, [c[0] for c in chain[:3]], len(chain), chain[-1][0])
            for org, chain in chains.items() if [c[0] for c in chain] != list(range(1, len(chain) + 1))]
    record(not gaps and set(orgs) <= set(chains), "%s: per org, seqs are exactly 1..head (no gap, no duplicate)" % tag,
           "\n".join(gaps) or "orgs missing: %s" % (set(orgs) - set(chains)))

    forks = []
    for org, chain in chains.items():
        prev = "0" * 64
        for seq, h, p, _ in chain:
            if p != prev:
                forks.append("%s seq %d: prev %s, previous hash %s" % (org, seq, p[:16], prev[:16]))
                break
            prev = h
    record(not forks, "%s: every prev is the previous receipt's hash (one chain per org, no fork)" % tag,
           "\n".join(forks))

    bad = sql("SELECT org_id, first_bad_seq, detail FROM defendable.verify_ledger() WHERE NOT ok "
              "UNION ALL SELECT org_id, first_bad_seq, detail FROM defendable.verify_disclosures() WHERE NOT ok").strip()
    n_ok = sql("SELECT count(*) FROM defendable.verify_ledger() WHERE ok").strip()
    record(bad == "" and int(n_ok) == len(chains), "%s: verify_ledger() and verify_disclosures() ok for all %d orgs" % (tag, len(chains)),
           bad or "verify_ledger ok rows %s" % n_ok)

    heads = {}
    for line in sql("SELECT org_id, seq, encode(hash, 'hex') FROM defendable.heads").split("\n"):
        if line:
            org, seq, h = line.split("|")
            heads[org] = (int(seq), h)
    head_bad = [org for org, chain in chains.items() if heads.get(org) != (chain[-1][0], chain[-1][1])]
    record(not head_bad and len(heads) == len(chains), "%s: each head is its org's last receipt" % tag,
           "\n".join("%s: head %s, last %s" % (o, heads.get(o), chains[o][-1][:2]) for o in head_bad))

    roots = {}
    # merkle_root() raises on a tree with a missing node: that counts as a wrong root
    for line in sql("SELECT org_id, encode(defendable.merkle_root(org_id), 'hex') FROM defendable.heads",
                    check=False).split("\n"):
        if line:
            org, root = line.split("|")
            roots[org] = root
    root_bad = [org for org, chain in chains.items()
                if roots.get(org) != rfc9162_root([bytes.fromhex(c[1]) for c in chain]).hex()]
    record(not root_bad, "%s: merkle_root() equals the RFC 9162 root of the receipt hashes, every org" % tag,
           "\n".join(root_bad))

    markers = [c[3] for chain in chains.values() for c in chain if c[3]]
    dup = sorted({m for m in markers if markers.count(m) > 1}) if len(set(markers)) != len(markers) else []
    stray = sorted(set(markers) - attempted)
    record(not dup and not stray and not odd,
           "%s: no append applied twice, none out of nowhere, no error but the outage's" % tag,
           "twice: %s\nnever sent: %s\nodd answers: %s" % (dup[:5], stray[:5], odd[:5]))
    return chains


def outbox_rows():
    rows = {}
    q = ("SELECT message_id, to_email, sent_at IS NOT NULL, failed_at IS NOT NULL, sending_at IS NOT NULL, "
         "secret IS NOT NULL, attempts FROM defendable.email_outbox WHERE to_email LIKE '%%@%s'" % MAIL_DOMAIN)
    for line in sql(q).split("\n"):
        if line:
            mid, to, sent, failed, sending, secret, attempts = line.split("|")
            rows[mid] = {"to": to, "sent": sent == "t", "failed": failed == "t", "sending": sending == "t",
                         "secret": secret == "t", "attempts": int(attempts)}
    return rows


def delivered_ids(sink):
    counts = {}
    for _, _, data in list(sink.messages):
        m = re.search(rb"^Message-ID: <([0-9a-f-]{36})@defendable>", data, re.M)
        key = m.group(1).decode() if m else "(no Message-ID)"
        counts[key] = counts.get(key, 0) + 1
    return counts


def settle_outbox(seconds=30):
    """Waits until no message is due and the claimed set stops changing; returns the claims
    left (their sender died or lost its database before reporting back)."""
    deadline = time.monotonic() + seconds
    last, stable = None, 0
    while time.monotonic() < deadline:
        rows = outbox_rows()
        pending = [m for m, r in rows.items() if not (r["sent"] or r["failed"] or r["sending"])]
        sending = frozenset(m for m, r in rows.items() if r["sending"] and not (r["sent"] or r["failed"]))
        if not pending and sending == last:
            stable += 1
            if stable >= 4:  # two seconds: four polls of the mail thread
                return sorted(sending)
        else:
            stable = 0
        last = sending
        time.sleep(0.5)
    return None


def check_mail(tag, target, journal, sink, stats):
    stuck = settle_outbox()
    if not record(stuck is not None, "%s: the gateway drains the outbox (nothing left due)" % tag,
                  json.dumps([r for r in outbox_rows().values() if not (r["sent"] or r["failed"])][:5])):
        return
    if stuck:
        # the 10 minutes after which outbox_claim gives up a claim that never reported back
        sql("UPDATE defendable.email_outbox SET sending_at = sending_at - interval '11 minutes' "
            "WHERE message_id IN (%s)" % ",".join("'%s'" % m for m in stuck))
        e2e.wait_for(lambda: all(outbox_rows()[m]["failed"] for m in stuck), 10)
    rows = outbox_rows()
    delivered = delivered_ids(sink)

    with journal.lock:
        acked, tried = set(journal.mail_acked), set(journal.mail_tried)
    tokens = {}
    for line in sql("SELECT email, count(*) FROM defendable.auth_tokens WHERE email LIKE '%%@%s' GROUP BY email"
                    % MAIL_DOMAIN).split("\n"):
        if line:
            e, n = line.split("|")
            tokens[e] = int(n)
    outbox_per = {}
    for r in rows.values():
        outbox_per[r["to"]] = outbox_per.get(r["to"], 0) + 1
    unpaired = sorted(e for e in set(tokens) | set(outbox_per) if tokens.get(e) != 1 or outbox_per.get(e) != 1)
    missing = sorted(e for e in acked if e not in tokens)
    stray = sorted(set(tokens) - tried)
    record(not unpaired and not missing and not stray,
           "%s: one token and one outbox row per request, every acknowledged request has both (%d acknowledged)"
           % (tag, len(acked)), "unpaired %s\nacknowledged, missing %s\nnever asked %s" % (unpaired[:5], missing[:5], stray[:5]))

    twice = {m: n for m, n in delivered.items() if n > 1 or m not in rows}
    record(not twice, "%s: no message delivered twice (%d delivered)" % (tag, len(delivered)), twice)

    events = set(sql("SELECT detail->>'message_id' FROM defendable.security_events WHERE kind = 'email.failed'").split())
    open_rows = [m for m, r in rows.items() if not (r["sent"] or r["failed"])]
    sent_wrong = [m for m, r in rows.items() if r["sent"] and delivered.get(m) != 1]
    failed_silent = [m for m, r in rows.items() if r["failed"] and (m not in events or r["secret"])]
    record(not open_rows and not sent_wrong and not failed_silent,
           "%s: every message sent exactly once, or given up with an email.failed event (none left pending)" % tag,
           "open %s\nsent but delivered %s\ngiven up silently %s"
           % (open_rows[:5], [(m, delivered.get(m, 0)) for m in sent_wrong[:5]], failed_silent[:5]))

    # given up: claimed by a sender that died before reporting back
    lost_now = [m for m in (stuck or []) if delivered.get(m, 0) == 0]
    doubt_delivered = [m for m in (stuck or []) if delivered.get(m, 0) == 1]
    stats["mail_lost"] += len(lost_now)
    stats["mail_doubt_delivered"] += len(doubt_delivered)
    record(len(lost_now) <= 1,
           "%s: at most one message given up undelivered per kill (the one mid-send)" % tag,
           "%d claimed and never delivered: %s" % (len(lost_now), lost_now))
    if target == "postmaster":
        # the gateway lived on: what it delivered while the database was away, it must record
        # as sent once the database is back, not leave to be given up as failed
        record(not doubt_delivered, "%s: no delivered message left unrecorded by the database crash" % tag,
               "delivered, still claimed after the restart: %s" % doubt_delivered)
    return len(stuck or []), len(lost_now), len(doubt_delivered)


# ---------------------------------------------------------------------------------------------
# Setup and rounds

def setup():
    sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")
    sql("CREATE DATABASE %s" % DB, db="postgres")
    sql("CREATE EXTENSION defendable")  # creates the defendable_gateway role on a new cluster
    sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$"
        % (ROLE, ROLE), db="postgres")
    sql("ALTER ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; GRANT defendable_gateway TO %s"
        % (ROLE, ROLE), db="postgres")
    owner = sql("INSERT INTO defendable.users (email) VALUES ('owner@%s') RETURNING user_id" % MAIL_DOMAIN).strip()
    orgs, keys = {}, {}
    for name in ("shared", "direct-a", "direct-b", "gateway-a", "gateway-b"):
        orgs[name] = sql("SELECT org_id FROM defendable.org_create('%s', now(), '%s')" % (owner, name)).strip()
        keys[name] = sql("SELECT key FROM defendable.apikey_create('%s', now(), '%s', 'crash')"
                         % (owner, orgs[name])).strip()
    return orgs, keys


def make_clients(journal, rnd, orgs, keys, port, workdir):
    return [DirectAppender("d1", journal, rnd, orgs["shared"], workdir),
            DirectAppender("d2", journal, rnd, orgs["shared"], workdir),
            DirectAppender("d3", journal, rnd, orgs["direct-a"], workdir),
            DirectAppender("d4", journal, rnd, orgs["direct-b"], workdir),
            GatewayAppender("g1", journal, rnd, orgs["shared"], keys["shared"], port),
            GatewayAppender("g2", journal, rnd, orgs["shared"], keys["shared"], port),
            GatewayAppender("g3", journal, rnd, orgs["gateway-a"], keys["gateway-a"], port),
            GatewayAppender("g4", journal, rnd, orgs["gateway-b"], keys["gateway-b"], port),
            MailRequester("m1", journal, rnd, port, 2 + 2 * rnd),
            MailRequester("m2", journal, rnd, port, 130 + 2 * rnd),
            Checkpointer("checkpoint", journal, rnd)]


def unexpected_stderr(clients):
    found = []
    for c in clients:
        if isinstance(c, DirectAppender) and os.path.exists(c.err_path):
            with open(c.err_path) as f:
                for line in f:
                    if line.strip() and not OUTAGE_ERRORS.search(line):
                        found.append("%s: %s" % (c.name_, line.strip()))
    return found


def run_round(rnd, target, rng, ctx):
    journal, cluster, gwp, stats = ctx["journal"], ctx["cluster"], ctx["gateway"], ctx["stats"]
    sql("DELETE FROM defendable.quota_counters")  # the /auth/request limits, per round
    odd_before = len(journal.odd)
    acked_before = len(journal.acked)
    journal.kill_at = None
    clients = make_clients(journal, rnd, ctx["orgs"], ctx["keys"], gwp.port, ctx["workdir"])
    for c in clients:
        c.start()
    delay = rng.uniform(0.3, 2.5)
    whole = rng.random() < 0.5
    time.sleep(delay)
    with journal.lock:
        in_flight = journal.in_flight
        acked_at_kill = len(journal.acked) - acked_before
        journal.kill_at = time.monotonic()
        checkpointing = clients[-1].running
    if target == "postmaster":
        kids, gone = cluster.kill(whole)
        what = "%s (%d server processes)" % ("whole server" if whole else "postmaster alone", kids + 1)
    else:
        gwp.kill()
        gone, what = 0.0, "gateway"
    time.sleep(0.3)  # the clients meet the outage
    for c in clients:
        c.stop()
    for c in clients:
        c.join(30)
    stuck_clients = [c.name_ for c in clients if c.is_alive()]
    if target == "postmaster":
        ok, took, out = cluster.start()
        if not record(ok, "round %d: the cluster restarts after the kill (crash recovery)" % rnd, out):
            return False
    else:
        took = time.monotonic()
        ok = gwp.start()
        took = time.monotonic() - took
        if not record(ok, "round %d: a new gateway starts on the same port" % rnd, gwp.gw.log_text()[-1500:]):
            return False
    with journal.lock:
        # answers that came after the kill from a client whose path it cut: under a killed
        # postmaster, commits its orphaned backends still made; under a killed gateway, only
        # answers that were already on their way
        late = sum(1 for a in journal.acked[acked_before:] if a[6] and (target == "postmaster" or a[4][0] == "g"))
    tag = "round %d (%s)" % (rnd, target)
    odd_stderr = unexpected_stderr(clients)
    for s in odd_stderr:
        journal.add_odd("psql", s)
    if stuck_clients:
        journal.add_odd("suite", "clients still running 30 s after the kill: %s" % stuck_clients)
    chains = check_ledger(tag, journal, ctx["orgs"].values(), odd_before)
    mail = check_mail(tag, target, journal, ctx["sink"], stats) or (0, 0, 0)
    present = {c[3] for chain in chains.values() for c in chain if c[3]}
    with journal.lock:
        acked_markers = {a[3] for a in journal.acked}
        tried = {m for m in journal.attempted if "-r%d-" % rnd in m}
    unacked_present = len([m for m in tried if m in present and m not in acked_markers])
    stats["rounds"] += 1
    stats["kills"].append((rnd, what))
    stats["unacked_present"] += unacked_present
    stats["late"] += late
    stats["checkpointing"] += checkpointing
    line = ("round %2d: kill %-38s after %.2f s%s: %4d acked before, %d requests in flight, %d acked after, "
            "%d committed unacknowledged; restart %.1f s%s; mail in doubt %d (delivered %d, lost %d)"
            % (rnd, what, delay, ", mid-CHECKPOINT" if checkpointing else "", acked_at_kill, in_flight, late,
               unacked_present, took, ", old processes gone in %.2f s" % gone if target == "postmaster" else "",
               mail[0], mail[2], mail[1]))
    print(line)
    sys.stdout.flush()
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pgdata", required=True)
    ap.add_argument("--server-log", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rounds", type=int, default=None, help="postmaster kills (CI 6, --full 20)")
    ap.add_argument("--gateway-rounds", type=int, default=None, help="gateway kills (CI 3, --full 10)")
    ap.add_argument("--full", action="store_true", help="the on-demand size")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rounds = args.rounds if args.rounds is not None else (20 if args.full else 6)
    gw_rounds = args.gateway_rounds if args.gateway_rounds is not None else (10 if args.full else 3)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2 ** 31)
    print("crash: seed %d (--seed %d reproduces the schedule), %d postmaster kills, %d gateway kills"
          % (seed, seed, rounds, gw_rounds))
    rng = random.Random(seed)
    t_start = time.monotonic()
    sink = gwp = None
    stats = {"rounds": 0, "kills": [], "unacked_present": 0, "mail_lost": 0, "mail_doubt_delivered": 0,
             "late": 0, "checkpointing": 0}
    try:
        settings = sql("SELECT current_setting('synchronous_commit') || ',' || current_setting('fsync')", db="postgres").strip()
        record(settings == "on,on", "the cluster commits durably (synchronous_commit = on, fsync = on)", settings)
        orgs, keys = setup()
        sink = SmtpSink()
        gwp = GatewayProc(args.workdir, e2e.free_port(), sink.port, base64.b64encode(os.urandom(48)).decode())
        if not record(gwp.start(), "the gateway starts", gwp.gw.log_text()[-1500:]):
            raise SystemExit
        ctx = {"journal": Journal(), "cluster": Cluster(args.pgdata, args.server_log), "gateway": gwp,
               "orgs": orgs, "keys": keys, "workdir": args.workdir, "sink": sink, "stats": stats}
        # the gateway kills are spread among the postmaster kills, in a seeded order
        targets = ["postmaster"] * rounds + ["gateway"] * gw_rounds
        rng.shuffle(targets)
        for i, target in enumerate(targets, 1):
            if not run_round(i, target, rng, ctx):
                break
        j = ctx["journal"]
        total = int(sql("SELECT count(*) FROM defendable.receipts WHERE kind = 'crash.append'").strip())
        kinds = {}
        for _, what in stats["kills"]:
            k = what.split(" (")[0]
            kinds[k] = kinds.get(k, 0) + 1
        print("crash: %d rounds survived of %d (kills: %s; %d mid-CHECKPOINT); %d appends acknowledged "
              "(%d of them after the kill that cut their path), %d of them not found at the last check; "
              "%d appended in all, "
              "%d committed without an acknowledgement; %d magic links asked, %d acknowledged, %d messages "
              "delivered, %d in doubt after a kill but delivered, %d given up undelivered; %.0f s"
              % (stats["rounds"], len(targets), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())),
                 stats["checkpointing"], len(j.acked), stats["late"], j.missing, total, stats["unacked_present"],
                 len(j.mail_tried), len(j.mail_acked), len(delivered_ids(sink)), stats["mail_doubt_delivered"],
                 stats["mail_lost"], time.monotonic() - t_start))
    except SystemExit:
        pass
    except Exception:
        import traceback
        record(False, "the suite ran to its end", traceback.format_exc())
    finally:
        if gwp is not None:
            gwp.stop()
        if sink is not None:
            sink.stop()
        if not os.environ.get("DFD_CRASH_KEEP"):
            sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres", check=False)
    print("crash: %d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
