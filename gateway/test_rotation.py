#!/usr/bin/env python3
"""Secret rotation without downtime, against the real gateway binary and a real database.

Every secret the gateway holds is rotated the way docs/operations.md says, while clients keep
calling with the credential they hold:

  1. the new value goes into NAME_FILE, the old one into NAME_PREVIOUS_FILE; SIGHUP
  2. clients still holding the old value keep working (the overlap); new sessions use the new one
  3. clients move; NAME_PREVIOUS_FILE is emptied; SIGHUP; the old value is refused
  4. each step is a secret.rotation receipt through POST /internal/receipts, carrying no secret

for JWT_SECRET, INTERNAL_API_KEY, RUNNER_TOKEN and STRIPE_WEBHOOK_SECRET, then the checkpoint
signing key (a new key id; /ledger/keys publishes both; checkpoints of the old key still
verify). Background clients call throughout; not one of their requests may fail. A reload with a
broken file must change nothing. Needs PGHOST/PGPORT/PGUSER of a running cluster (a superuser).
Prints "rotation: N passed, N failed".
"""
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_e2e as e2e  # noqa: E402  (the same HTTP client, JWT maker, note verifier)

DB = "dfd_rotation"
DB_ROLE = "dfd_rotation_gateway"
ORIGIN = "rotation.example.test"
SEEN = []  # every secret value used, none of which may appear in a log or the database


def record(cond, what, detail=""):
    return e2e.record(cond, what, detail)


def psql(sql):
    return e2e.psql(sql, db=DB)


def new_secret(prefix=""):
    value = prefix + secrets.token_urlsafe(36)
    SEEN.append(value)
    return value


def write_atomically(path, text):
    """What an operator's tooling (or a Kubernetes secret update) does: never a half-written file."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Client(threading.Thread):
    """A client calling one route over and over with whatever credential it holds right now."""

    def __init__(self, gw, name, call):
        super().__init__(daemon=True)
        self.gw, self.name, self.call = gw, name, call
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []

    def run(self):
        while not self.stop_event.is_set():
            r = self.call()
            with self.lock:
                if r is None:
                    self.ok += 1
                else:
                    self.failures.append(r)
            time.sleep(0.01)

    def count(self):
        with self.lock:
            return self.ok


class Rotation:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="dfd-rotation-")
        self.dir = os.path.join(self.tmp, "secrets")
        os.mkdir(self.dir, 0o700)
        self.reloads_seen = 0

    def path(self, name):
        return os.path.join(self.dir, name.lower())

    def set_file(self, name, value):
        write_atomically(self.path(name), (value or "") + ("\n" if value else ""))

    def sighup_and_wait(self, gw, expect_ok=True):
        """Sends SIGHUP and waits for the gateway's reload line; returns it (parsed)."""
        before = self.reloads_seen
        gw.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            lines = [json.loads(l) for l in gw.log_lines() if '"event":"reload"' in l]
            done = [l for l in lines if "changed" in l or "not reloaded" in l.get("message", "")]
            if len(done) > before:
                self.reloads_seen = len(done)
                line = done[before]
                problems = [l.get("problem") for l in lines if "problem" in l]
                record(("changed" in line) == expect_ok,
                       "SIGHUP %s" % ("reloads" if expect_ok else "with a broken file keeps the old set"),
                       [line] + problems[-3:])
                return line
            time.sleep(0.05)
        record(False, "the gateway logs its reload within 10 s")
        return {}


def main():
    for v in ("PGHOST", "PGPORT", "PGUSER"):
        if not os.environ.get(v):
            print("rotation: %s is not set\nrotation: 0 passed, 1 failed" % v)
            return 1
    rot = Rotation()
    gw = None
    clients = []
    try:
        e2e.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")
        e2e.psql("CREATE DATABASE %s" % DB, db="postgres")
        e2e.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$"
                 % (DB_ROLE, DB_ROLE), db="postgres")
        psql("CREATE EXTENSION defendable")
        e2e.psql("GRANT defendable_gateway TO %s" % DB_ROLE, db="postgres")
        user = psql("INSERT INTO defendable.users (email) VALUES ('ops@rotation.example') RETURNING user_id").strip()
        org = psql("SELECT org_id FROM defendable.org_create('%s', now() - interval '1 minute', 'Rotation')" % user).strip()

        current = {"JWT_SECRET": new_secret(), "INTERNAL_API_KEY": new_secret(), "RUNNER_TOKEN": new_secret(),
                   "STRIPE_WEBHOOK_SECRET": new_secret("whsec_")}
        for name, value in current.items():
            rot.set_file(name, value)
            rot.set_file(name + "_PREVIOUS", None)  # no overlap yet: an empty file is an unset value
        key_path = os.path.join(rot.dir, "ledger.key")
        vkey1 = subprocess.run([e2e.VERIFY, "keygen", ORIGIN, "--out", key_path], capture_output=True, text=True,
                               check=True).stdout.strip()
        rot.set_file("LEDGER_VERIFIER_KEYS_PREVIOUS", None)
        port = e2e.free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ENV": "development", "PORT": str(port),
               "DATABASE_URL": "host=%s port=%s dbname=%s user=%s" % (os.environ["PGHOST"], os.environ["PGPORT"], DB, DB_ROLE),
               "API_BASE_URL": "http://127.0.0.1:%d" % port, "MAIL_DIR": os.path.join(rot.tmp, "mail"),
               "INTERNAL_ALLOW_CIDRS": "127.0.0.1/32", "LEDGER_ORIGIN": ORIGIN, "LEDGER_SIGNING_KEY": key_path,
               "LEDGER_VERIFIER_KEYS_PREVIOUS_FILE": rot.path("LEDGER_VERIFIER_KEYS_PREVIOUS"), "GATEWAY_THREADS": "4"}
        for name in current:
            env[name + "_FILE"] = rot.path(name)
            env[name + "_PREVIOUS_FILE"] = rot.path(name + "_PREVIOUS")
        gw = e2e.Gateway("rotation", env, rot.tmp)
        if not record(gw.wait_healthy(), "the gateway starts with every secret read from a file", gw.log_text()[-1500:]):
            return 1

        # ---- what the clients hold, and how each one calls --------------------------------------
        held = dict(current)
        lock = threading.Lock()

        def holding(name):
            with lock:
                return held[name]

        def session():
            now = int(time.time())
            return e2e.make_jwt({"sub": user, "iat": now - 5, "exp": now + 3600}, holding("JWT_SECRET"))

        def call_orgs():
            r = gw.req("GET", "/me", token=session(), keep=False)
            return None if r.status == 200 else r.desc()

        def call_internal():
            r = gw.req("POST", "/internal/receipts", {"org": org, "kind": "deploy.heartbeat", "fields": {"n": 1}},
                       token=holding("INTERNAL_API_KEY"), keep=False)
            return None if r.status == 201 else r.desc()

        def call_runner():
            r = gw.req("POST", "/internal/runner/claim", {"runner": "rotation-runner"}, token=holding("RUNNER_TOKEN"),
                       keep=False)
            return None if r.status == 204 else r.desc()

        def call_stripe():
            payload = e2e.stripe_event("evt_" + secrets.token_hex(12), "customer.created", {"id": "cus_1"})
            r = gw.req("POST", "/webhooks/stripe", payload,
                       headers={"Stripe-Signature": e2e.stripe_header(payload, holding("STRIPE_WEBHOOK_SECRET"))}, keep=False)
            return None if r.status == 200 else r.desc()

        def call_health():
            r = gw.req("GET", "/healthz", keep=False)
            return None if r.status == 200 else r.desc()

        calls = {"JWT_SECRET": call_orgs, "INTERNAL_API_KEY": call_internal, "RUNNER_TOKEN": call_runner,
                 "STRIPE_WEBHOOK_SECRET": call_stripe}
        for name, call in list(calls.items()) + [("healthz", call_health)]:
            c = Client(gw, name, call)
            clients.append(c)
            c.start()
        time.sleep(0.5)
        for c in clients:
            record(c.count() > 0 and not c.failures, "client %s works before any rotation" % c.name, c.failures[:3])

        def rotation_receipt(secret_name, phase, extra=None):
            fields = {"secret": secret_name, "phase": phase}
            fields.update(extra or {})
            r = gw.req("POST", "/internal/receipts", {"org": org, "kind": "secret.rotation", "fields": fields,
                                                      "public_fields": sorted(fields)},
                       token=holding("INTERNAL_API_KEY"))
            record(r.status == 201, "%s %s is recorded as a secret.rotation receipt" % (secret_name, phase), r.desc())

        def refused(name, value):
            """True when a call with this value of the secret is refused the way a bad credential is."""
            if name == "JWT_SECRET":
                now = int(time.time())
                r = gw.req("GET", "/me", token=e2e.make_jwt({"sub": user, "iat": now - 5, "exp": now + 600}, value))
                return r.status == 401, r.desc()
            if name == "STRIPE_WEBHOOK_SECRET":
                payload = e2e.stripe_event("evt_" + secrets.token_hex(12), "customer.created", {})
                r = gw.req("POST", "/webhooks/stripe", payload, headers={"Stripe-Signature": e2e.stripe_header(payload, value)})
                return r.status == 400, r.desc()
            path, body = (("/internal/receipts", {"org": org, "kind": "deploy.probe", "fields": {}})
                          if name == "INTERNAL_API_KEY" else ("/internal/runner/claim", {"runner": "probe"}))
            r = gw.req("POST", path, body, token=value)
            return r.status == 401, r.desc()

        # ---- each bearer secret: overlap, move, retire --------------------------------------------
        for name in ("JWT_SECRET", "INTERNAL_API_KEY", "RUNNER_TOKEN", "STRIPE_WEBHOOK_SECRET"):
            old, new = current[name], new_secret("whsec_" if name.startswith("STRIPE") else "")
            client = next(c for c in clients if c.name == name)
            rot.set_file(name + "_PREVIOUS", old)
            rot.set_file(name, new)
            line = rot.sighup_and_wait(gw)
            record(name in line.get("changed", []) and old not in json.dumps(line) and new not in json.dumps(line),
                   "%s: the reload line names the rotated secret, never its value" % name, line)
            current[name] = new
            n0 = client.count()
            time.sleep(0.4)
            record(client.count() > n0 and not client.failures,
                   "%s: clients still holding the old value keep working during the overlap" % name, client.failures[:3])
            ok, desc = refused(name, new)
            record(not ok, "%s: the new value is accepted at once" % name, desc)
            if name == "JWT_SECRET":
                # a session issued now is signed with the new secret, never with the previous one
                r = gw.req("POST", "/auth/request", {"email": "ops@rotation.example"})
                link, token = e2e.wait_mail(gw, env["MAIL_DIR"], "ops@rotation.example", "magic")
                r = gw.req("POST", "/auth/verify", {"token": token or ""})
                issued = (r.json or {}).get("token", "")
                SEEN.append(issued)
                head, _, rest = issued.partition(".")
                claims, _, sig = rest.partition(".")
                mac = lambda key: e2e.b64url(hmac.new(key.encode(), (head + "." + claims).encode(), hashlib.sha256).digest())
                record(sig != "" and sig == mac(new) and sig != mac(old),
                       "JWT_SECRET: sessions issued during the overlap are signed with the new secret only", r.desc())
            rotation_receipt(name, "overlap-started")
            with lock:
                held[name] = new  # the clients move to the new value
            n1 = client.count()
            time.sleep(0.3)
            record(client.count() > n1, "%s: the clients moved to the new value" % name)
            rot.set_file(name + "_PREVIOUS", None)
            rot.sighup_and_wait(gw)
            ok, desc = refused(name, old)
            record(ok, "%s: after the overlap the old value is refused" % name, desc)
            ok, desc = refused(name, new)
            record(not ok, "%s: the new value still works" % name, desc)
            rotation_receipt(name, "completed")

        # ---- a broken reload changes nothing --------------------------------------------------------
        rot.set_file("RUNNER_TOKEN_PREVIOUS", current["RUNNER_TOKEN"])  # equal to the current one: refused
        line = rot.sighup_and_wait(gw, expect_ok=False)
        problems = [json.loads(l).get("problem", "") for l in gw.log_lines() if '"problem"' in l]
        record(any("RUNNER_TOKEN_PREVIOUS must differ from RUNNER_TOKEN" in p for p in problems),
               "a refused reload logs the problem by name", problems[-3:])
        rot.set_file("RUNNER_TOKEN_PREVIOUS", None)
        rot.sighup_and_wait(gw)

        for c in clients:
            c.stop_event.set()
        for c in clients:
            c.join(10)
        for c in clients:
            record(c.count() > 20 and not c.failures,
                   "no downtime: every one of client %s's %d calls across all reloads succeeded" % (c.name, c.count()),
                   c.failures[:5])

        # ---- the checkpoint signing key ---------------------------------------------------------------
        r = gw.req("GET", "/ledger/checkpoint?org=" + org, token=session())
        note1 = (r.json or {}).get("note") or ""
        record(r.status == 200 and r.json.get("verifier_key") == vkey1 and e2e.check_signed_note(note1, vkey1)[0],
               "before the key rotation, the checkpoint is signed by the first key", r.desc())
        key2_path = os.path.join(rot.tmp, "ledger2.key")
        vkey2 = subprocess.run([e2e.VERIFY, "keygen", ORIGIN, "--out", key2_path], capture_output=True, text=True,
                               check=True).stdout.strip()
        rot.set_file("LEDGER_VERIFIER_KEYS_PREVIOUS", vkey1)
        os.replace(key2_path, key_path)
        line = rot.sighup_and_wait(gw)
        record("LEDGER_SIGNING_KEY" in line.get("changed", []) and line.get("verifier_key") == vkey2,
               "the reload switches to the new signing key", line)
        r = gw.req("GET", "/ledger/keys")
        record(r.status == 200 and r.json.get("verifier_keys") == [vkey2, vkey1],
               "/ledger/keys publishes the new key first, then the retired one", r.desc())
        # no receipt since note1: the newest checkpoint is by the retired key; the answer must still
        # be a note that verifies with the verifier_key sent beside it
        r = gw.req("GET", "/ledger/checkpoint?org=" + org, token=session())
        note2 = (r.json or {}).get("note") or ""
        record(r.status == 200 and r.json.get("verifier_key") == vkey2 and e2e.check_signed_note(note2, vkey2)[0]
               and r.json.get("tree_size") == r.json.get("current_size"),
               "after the rotation, the same tree is re-signed by the new key", r.desc())
        record(e2e.check_signed_note(note1, vkey1)[0] is not None and e2e.check_signed_note(note1, vkey2)[0] is None,
               "the old checkpoint still verifies with the retired key (and only with it)")
        ok = psql("SELECT ok FROM defendable.verify_checkpoint($n$%s$n$, '%s')" % (note1, vkey1)).strip()
        record(ok == "t", "the database checks the old checkpoint against today's tree with the retired key", ok)
        with open(key_path, "w") as f:
            f.write("not a key\n")
        rot.sighup_and_wait(gw, expect_ok=False)
        r = gw.req("GET", "/ledger/keys")
        record(r.status == 200 and r.json.get("verifier_keys") == [vkey2, vkey1],
               "a reload with an unreadable signing key keeps the key in use", r.desc())
        rotation_receipt("LEDGER_SIGNING_KEY", "completed", {"verifier_key": vkey2, "retired_key": vkey1})

        # ---- what was written ---------------------------------------------------------------------------
        n = psql("SELECT count(*) FROM defendable.receipts WHERE org_id = '%s' AND kind = 'secret.rotation'" % org).strip()
        record(n == "9", "nine secret.rotation receipts (two per bearer secret, one for the signing key)", n)
        dump = psql("SELECT coalesce(string_agg(r::text || d::text, ''), '') FROM defendable.receipts r "
                    "JOIN defendable.disclosures d USING (org_id, seq)")
        leaked = [s for s in SEEN if s and s in dump]
        record(not leaked, "no secret value is in any receipt", len(leaked))
        log = gw.log_text()
        leaked = [s for s in SEEN if s and s in log]
        record(not leaked, "no secret value is in the gateway log", len(leaked))
        ok = psql("SELECT bool_and(ok) FROM defendable.verify_ledger()").strip()
        record(ok == "t", "the ledger verifies after all the rotations", ok)
        gw.stop()
        log = gw.log_text()
        record(gw.proc.returncode == 0 and "Sanitizer" not in log and "runtime error" not in log,
               "the gateway stops cleanly after the reloads (and, when sanitized, reports nothing)",
               "exit %s; %s" % (gw.proc.returncode, log[-1500:] if "Sanitizer" in log else ""))
    finally:
        for c in clients:
            c.stop_event.set()
        if gw is not None:
            gw.stop()
        if not os.environ.get("DFD_KEEP_TMP"):
            shutil.rmtree(rot.tmp, ignore_errors=True)
        try:
            e2e.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")
        except Exception:
            pass
    print("rotation: %d passed, %d failed" % (e2e.PASSED, e2e.FAILED))
    return 1 if e2e.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
