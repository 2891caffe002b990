#!/usr/bin/env python3
"""Past one machine, proven on one: a hot standby behind DATABASE_READ_URL, and two gateways on
one database (docs/scaling.md).

Starts its own primary and a streaming standby (pg_basebackup -R) under a temporary directory,
as the postgres OS user when run as root, and two real gateway processes. Checks:

  * read-only routes (share links, receipts, ledger verify and proofs) are answered by the
    standby, with the same bytes as the primary would give; writes still go to the primary;
  * with the standby down, the same routes are answered by the primary (no error), and once it
    is back the gateway returns to it by itself;
  * two gateways share rate limits (quota_take rows): alternating requests get exactly the limit;
  * checkpoint signing stays single-writer: one signer lease among the gateways, taken over when
    its holder dies, and under concurrent on-demand signing from both gateways every stored note
    verifies, agrees with the tree, and no two notes give one tree size different roots.

Environment: PATH must reach PostgreSQL 15's binaries (initdb, pg_ctl, pg_basebackup, psql).
Usage:  python3 gateway/test_scaling.py     prints "scaling: N passed, N failed".
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_e2e as e2e  # noqa: E402  (the gateway runner, login, note checks)

DB = "dfd_scaling"
ROLE = "dfd_scaling_gw"
ORIGIN = "ledger.scaling.test"
IS_ROOT = os.geteuid() == 0


def as_pg(cmd, **kw):
    """Runs a PostgreSQL program as the cluster's owner (postgres when we are root)."""
    if IS_ROOT:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)


class Cluster:
    def __init__(self, root, name, port):
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = port
        os.makedirs(self.sock)
        if IS_ROOT:
            subprocess.run(["chown", "-R", "postgres:", self.dir], check=True)

    def conf(self, text):
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(text)

    def start(self):
        p = as_pg(["pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start"])
        if p.returncode != 0:
            raise RuntimeError("cannot start %s: %s %s" % (self.dir, p.stdout, self.log()[-2000:]))

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            as_pg(["pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return f.read()
        except OSError:
            return ""

    def sql(self, sql, db=DB, check=True):
        p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.sock, "-p", str(self.port),
                            "-U", "postgres", "-d", db, "-c", sql], capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError("psql on %d failed (%s): %s" % (self.port, sql[:160], p.stderr.strip()))
        return p.stdout.strip()

    def conninfo(self, user=ROLE):
        return "host=%s port=%d dbname=%s user=%s" % (self.sock, self.port, DB, user)


def wait_until(fn, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if fn():
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def metric(gw, name):
    r = gw.req("GET", "/metrics", keep=False)
    for line in r.text().split("\n"):
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def wait_accesses(primary, share_id, want, seconds=5):
    """A link's access count on the primary once it reaches want (the gateway adds counts once a
    second), or as it stands after seconds."""
    count = lambda: int(primary.sql("SELECT accesses FROM defendable.share_access('%s')" % share_id))
    wait_until(lambda: count() >= want, seconds)
    return count()


def caught_up(primary, standby):
    lsn = primary.sql("SELECT pg_current_wal_lsn()", db="postgres")
    return wait_until(lambda: standby.sql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn, db="postgres") == "t", 30)


def lease_holders(primary):
    return int(primary.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1684432972 "
                           "AND objid = 0 AND objsubid = 2 AND granted", db="postgres"))


def main():
    t0 = time.time()

    def record(cond, what, detail=""):
        if os.environ.get("DFD_SCALING_TIME"):
            what = "[%5.1f s] %s" % (time.time() - t0, what)
        return e2e.record(cond, what, detail)
    for prog in ("initdb", "pg_ctl", "pg_basebackup", "psql"):
        if shutil.which(prog) is None:
            print("scaling: %s is not on PATH" % prog)
            print("scaling: 0 passed, 1 failed")
            return 1
    tmp = tempfile.mkdtemp(prefix="dfd-scaling-")
    os.chmod(tmp, 0o755)
    primary = standby = None
    gateways = []
    c = e2e.Ctx()
    c.tmp = tmp
    c.mail_dir = os.path.join(tmp, "mail-a")
    c.jwt_secret = e2e.secrets.token_urlsafe(48)
    try:
        # ---- a primary and a streaming hot standby --------------------------------------------
        primary = Cluster(tmp, "primary", e2e.free_port())
        p = as_pg(["initdb", "-D", primary.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"])
        if p.returncode != 0:
            raise RuntimeError("initdb: " + p.stderr)
        primary.conf("\nport = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\n"
                     "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n" % (primary.port, primary.sock))
        primary.start()
        primary.sql("CREATE DATABASE %s" % DB, db="postgres")
        primary.sql("CREATE EXTENSION defendable")
        primary.sql("CREATE ROLE %s LOGIN; GRANT defendable_gateway TO %s" % (ROLE, ROLE))
        standby = Cluster(tmp, "standby", e2e.free_port())
        os.rmdir(standby.sock)
        p = as_pg(["pg_basebackup", "-h", primary.sock, "-p", str(primary.port), "-U", "postgres",
                   "-D", standby.data, "-R", "-X", "stream", "-c", "fast"])
        if p.returncode != 0:
            raise RuntimeError("pg_basebackup: " + p.stderr)
        os.makedirs(standby.sock)
        if IS_ROOT:
            subprocess.run(["chown", "postgres:", standby.sock], check=True)
        standby.conf("\nport = %d\nunix_socket_directories = '%s'\n" % (standby.port, standby.sock))
        standby.start()
        record(standby.sql("SELECT pg_is_in_recovery()", db="postgres") == "t", "the standby is a hot standby in recovery")

        key = os.path.join(tmp, "ledger.key")
        k = subprocess.run([e2e.VERIFY, "keygen", ORIGIN, "--out", key], capture_output=True, text=True, timeout=30)
        if k.returncode != 0:
            raise RuntimeError("keygen: " + k.stderr)
        vkey = k.stdout.strip().split()[-1]

        def env_for(port, mail_dir, read_url=None):
            env = e2e.gateway_env(c, port, primary.conninfo(),
                                  {"LEDGER_SIGNING_KEY": key, "LEDGER_ORIGIN": ORIGIN, "MAIL_DIR": mail_dir,
                                   "CHECKPOINT_INTERVAL_SECONDS": "1"})
            if read_url:
                env["DATABASE_READ_URL"] = read_url
            return env

        # ---- gateway A reads from the standby ---------------------------------------------------
        a = e2e.Gateway("a", env_for(e2e.free_port(), c.mail_dir, standby.conninfo()), tmp)
        gateways.append(a)
        if not record(a.wait_healthy(), "gateway A starts with DATABASE_READ_URL", a.log_text()[-1500:]):
            raise RuntimeError("gateway A did not start")
        c.base = a.base
        e2e.DOC.update(a.req("GET", "/openapi.json", keep=False).json or {})  # login checks answers against it
        session = e2e.login(a, c, "owner@scaling.test", "login through gateway A")
        if session is None:
            raise RuntimeError("login failed")
        jwt = session["token"]
        r = a.req("POST", "/orgs", {"name": "Scaling"}, token=jwt)
        record(r.status in (200, 201), "an organization is created through gateway A (primary)", r.desc())
        org = r.json["org_id"]
        primary.sql("SELECT count(*) FROM (SELECT defendable.append_receipt('%s', 'run.complete', "
                    "jsonb_build_object('run', i, 'note', 'n' || i), '{run}') FROM generate_series(1, 40) i) s" % org)
        share_id, token = primary.sql("SELECT share_id || ' ' || token FROM defendable.share_create('%s', 17)" % org).split()
        r = a.req("GET", "/ledger/checkpoint?org=%s" % org, token=jwt)
        record(r.status == 200 and r.json.get("tree_size") == r.json.get("current_size"),
               "a checkpoint is signed and recorded through A (a write: the primary)", r.desc())
        record(caught_up(primary, standby), "the standby replays the primary's WAL")

        before = (metric(a, "defendable_db_replica_statements_total"), metric(a, "defendable_db_replica_fallbacks_total"))
        r = a.req("GET", "/share/%s" % token)
        on_primary = json.loads(primary.sql("SELECT defendable.receipt_bundle('%s', 17)" % org))
        record(r.status == 200 and r.json == on_primary, "a share link resolved through A equals the primary's bundle", r.desc())
        r = a.req("GET", "/ledger/verify?org=%s" % org, token=jwt)
        n_receipts = int(primary.sql("SELECT seq FROM defendable.heads WHERE org_id = '%s'" % org))
        record(r.status == 200 and r.json.get("ok") is True and r.json.get("receipts") == n_receipts,
               "ledger verify through A: all %d receipts, ok" % n_receipts, r.desc())
        r = a.req("GET", "/ledger/proof/23?org=%s" % org, token=jwt)
        record(r.status == 200 and r.json == json.loads(primary.sql("SELECT defendable.receipt_bundle('%s', 23)" % org)),
               "an inclusion proof through A equals the primary's", r.desc())
        r = a.req("GET", "/receipts?org=%s&limit=5" % org, token=jwt)
        record(r.status == 200, "a receipt page through A", r.desc())
        after = (metric(a, "defendable_db_replica_statements_total"), metric(a, "defendable_db_replica_fallbacks_total"))
        record(after[0] - before[0] == 4 and after[1] == before[1],
               "those four reads were answered by the standby (replica statements +4, no fallback)",
               "before %s after %s" % (before, after))
        reads = standby.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'defendable-gateway-read'",
                            db="postgres")
        record(int(reads) >= 1, "the standby holds the gateway's read connection", reads)
        record(wait_accesses(primary, share_id, 1) == 1,
               "a link resolved on the standby is counted on the primary (the gateway adds its counts there)")

        # a link the standby has not replayed yet: asked again of the primary, found there
        standby.sql("SELECT pg_wal_replay_pause()", db="postgres")
        fresh_id, fresh = primary.sql("SELECT share_id || ' ' || token FROM defendable.share_create('%s', 5)" % org).split()
        before = metric(a, "defendable_db_replica_fallbacks_total")
        r = a.req("GET", "/share/%s" % fresh)
        record(r.status == 200 and r.json.get("receipt", {}).get("seq") == 5 and
               metric(a, "defendable_db_replica_fallbacks_total") == before + 1,
               "a link created after the standby's last replay is resolved by the primary", r.desc())
        r = a.req("GET", "/share/dfs_" + "A" * 43)
        record(r.status == 404, "an unknown link is still 404 (the primary's answer)", r.desc())
        standby.sql("SELECT pg_wal_replay_resume()", db="postgres")

        # the standby goes away: the same reads come from the primary, without an error
        standby.stop("immediate")
        before = metric(a, "defendable_db_replica_fallbacks_total")
        r1 = a.req("GET", "/share/%s" % token)
        r2 = a.req("GET", "/ledger/verify?org=%s" % org, token=jwt)
        record(r1.status == 200 and r1.json == on_primary and r2.status == 200 and r2.json.get("ok") is True,
               "with the standby down, reads are answered by the primary", r1.desc() + "\n" + r2.desc())
        record(metric(a, "defendable_db_replica_fallbacks_total") - before >= 2,
               "... and counted as fallbacks", str(metric(a, "defendable_db_replica_fallbacks_total")))
        record(wait_accesses(primary, share_id, 2) == 2,
               "the link resolved on the primary is counted")
        primary.sql("SELECT count(*) FROM (SELECT defendable.append_receipt('%s', 'run.complete', "
                    "jsonb_build_object('run', i), '{run}') FROM generate_series(41, 50) i) s" % org)
        standby.start()
        record(caught_up(primary, standby), "the standby comes back and catches up")
        base = metric(a, "defendable_db_replica_statements_total")

        def back_on_standby():
            r = a.req("GET", "/ledger/verify?org=%s" % org, token=jwt, keep=False)
            return r.status == 200 and r.json.get("receipts") == n_receipts + 10 and \
                metric(a, "defendable_db_replica_statements_total") > base
        record(wait_until(back_on_standby, 20), "after its back-off the gateway reads from the standby again, "
               "which has the receipts appended while it was down")

        # ---- a second gateway on the same database -----------------------------------------------
        b = e2e.Gateway("b", env_for(e2e.free_port(), os.path.join(tmp, "mail-b")), tmp)
        gateways.append(b)
        if not record(b.wait_healthy(), "gateway B starts on the same database", b.log_text()[-1500:]):
            raise RuntimeError("gateway B did not start")

        # rate limits live in the database: two gateways give one budget, not one each
        primary.sql("DELETE FROM defendable.quota_counters")
        answers = [(a if i % 2 == 0 else b).req("POST", "/auth/request", {"email": "limit@scaling.test"}).status
                   for i in range(8)]
        record(answers.count(202) == 5 and answers.count(429) == 3,
               "8 magic-link requests for one address, alternating A and B: 5 accepted, 3 limited (limit 5)", answers)
        primary.sql("DELETE FROM defendable.quota_counters")
        answers = [(a if i % 2 == 0 else b).req("POST", "/auth/request", {"email": "ip%d@scaling.test" % i}).status
                   for i in range(8)]
        record(answers.count(202) == 5 and answers.count(429) == 3,
               "8 requests from one address to different mailboxes, alternating A and B: 5 accepted (per-IP limit 5)",
               answers)
        primary.sql("DELETE FROM defendable.quota_counters")

        # one signer lease between them
        record(wait_until(lambda: lease_holders(primary) == 1, 10), "exactly one gateway holds the signer lease")
        samples = []
        for _ in range(10):
            samples.append(lease_holders(primary))
            time.sleep(0.2)
        record(samples == [1] * 10, "... and keeps holding it alone (10 samples over 2 s)", samples)
        record("signer lease taken" in a.log_text() and "signer lease taken" not in b.log_text(),
               "the lease is A's (started first); B does not sign due checkpoints",
               "\n".join(l for l in (a.log_text() + b.log_text()).split("\n") if "lease" in l)[-800:])

        # both sign on demand at once while receipts keep coming: one writer per org at a time
        orgs = [org]
        for i in range(2):
            r = b.req("POST", "/orgs", {"name": "Scaling %d" % i}, token=jwt)
            record(r.status in (200, 201), "organization %d created through gateway B" % i, r.desc())
            orgs.append(r.json["org_id"])
        stop = threading.Event()
        problems = []
        counts = {"checkpoint": 0, "append": 0}

        def appender():
            n = 0
            while not stop.is_set():
                try:
                    primary.sql("SELECT count(*) FROM (SELECT defendable.append_receipt(o, 'run.complete', "
                                "jsonb_build_object('n', %d), '{n}') FROM unnest(ARRAY['%s']::uuid[]) o) s"
                                % (n, "','".join(orgs)))
                    counts["append"] += 1
                except Exception as ex:  # pragma: no cover - reported as a failure below
                    problems.append("append: %r" % ex)
                n += 1
                time.sleep(0.02)

        def signer(gw):
            while not stop.is_set():
                for o in orgs:
                    r = gw.req("GET", "/ledger/checkpoint?org=%s" % o, token=jwt, keep=False)
                    counts["checkpoint"] += 1
                    if r.status != 200:
                        problems.append("%s: %s" % (gw.name, r.desc()))
                        continue
                    body, why = e2e.check_signed_note(r.json["note"], vkey)
                    if body is None:
                        problems.append("%s: note does not verify: %s" % (gw.name, why))
        threads = [threading.Thread(target=appender)] + \
            [threading.Thread(target=signer, args=(g,)) for g in (a, b, a, b)]
        for t in threads:
            t.start()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join(30)
        record(not problems and counts["checkpoint"] > 20 and counts["append"] > 10,
               "concurrent on-demand signing from A and B while appending: every answer 200 with a verifying note "
               "(%d checkpoint requests, %d append rounds)" % (counts["checkpoint"], counts["append"]), "\n".join(problems[:10]))
        rows = json.loads(primary.sql("SELECT coalesce(json_agg(json_build_object('org', org_id, 'size', tree_size, "
                                      "'note', note) ORDER BY org_id, tree_size), '[]') FROM defendable.checkpoints"))
        roots_by_size = {}
        bad = []
        for row in rows:
            body, why = e2e.check_signed_note(row["note"], vkey)
            if body is None:
                bad.append("%s@%s: %s" % (row["org"], row["size"], why))
                continue
            root = body.split("\n")[2]
            roots_by_size.setdefault((row["org"], row["size"]), set()).add(root)
        conflicts = [k for k, v in roots_by_size.items() if len(v) != 1]
        record(len(rows) > 3 and not bad and not conflicts,
               "every stored checkpoint (%d) verifies and no tree size has two roots" % len(rows),
               "\n".join(bad[:5] + [str(x) for x in conflicts[:5]]))
        verified = primary.sql("SELECT count(*) FILTER (WHERE v.ok), count(*) FROM defendable.checkpoints c, "
                               "LATERAL defendable.verify_checkpoint(c.note, '%s') v" % vkey)
        ok_n, all_n = verified.split("|")
        record(ok_n == all_n and int(all_n) >= len(rows),
               "verify_checkpoint: every note is consistent with today's tree (%s of %s)" % (ok_n, all_n))

        # the lease holder dies without a word: its connection ends, the other gateway takes over
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        record(wait_until(lambda: "signer lease taken" in b.log_text() and lease_holders(primary) == 1, 15),
               "after A is killed (-9), B takes the signer lease", b.log_text()[-800:])
        size = int(primary.sql("SELECT seq FROM defendable.heads WHERE org_id = '%s'" % orgs[2]))
        primary.sql("SELECT defendable.append_receipt('%s', 'run.complete', '{\"after\": 1}', '{after}')" % orgs[2])
        record(wait_until(lambda: primary.sql("SELECT max(tree_size) FROM defendable.checkpoints WHERE org_id = '%s'"
                                              % orgs[2]) == str(size + 1), 15),
               "B's periodic signer covers a receipt appended after the failover (no request asked for it)")
    except Exception:
        record(False, "scaling suite", traceback.format_exc())
    finally:
        for g in gateways:
            try:
                g.stop(wait=10)
            except Exception:
                pass
        for cl in (standby, primary):
            if cl is not None:
                cl.stop("immediate")
        if os.environ.get("DFD_SCALING_KEEP"):
            print("scaling: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("scaling: %d passed, %d failed" % (e2e.PASSED, e2e.FAILED))
    return 1 if e2e.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
