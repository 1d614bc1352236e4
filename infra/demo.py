"""`make demo`: a scripted story against the local service.

Uses a running `make run` on localhost:9000, or starts one (and stops it at
the end). A user signs up and shares the referral link, a friend signs up
through it, upgrades to Pro, buys $10 of flexible credits and spends some;
the payment is charged back (debt), a second purchase repays the debt, the
user holds credits for a render and captures less, runs low and gets the
low-balance email with her options (and the same from /v1/me/credit-options),
and a rollover tick passes the friend's cycle end. Each step prints the
request, the response and both balances; at the end, the emails the emulator
received. Exits non-zero as soon as a step does not behave as documented.
"""

import json
import os
import random
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

API = f"http://127.0.0.1:{os.environ.get('WATCH_PORT', '9000')}"
EMULATOR = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5005")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StepFailed(Exception):
    pass


def call(method, path, body=None, user=None):
    headers = {"content-type": "application/json"}
    if user:
        headers["x-dev-user"] = user
    else:
        headers["x-dev-caller"] = "demo"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def invoke(function, payload):
    url = f"{API}/2015-03-31/functions/{function}/invocations"
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.loads(resp.read())


def balance(user):
    status, body = call("GET", "/v1/me/balance", user=user)
    expect(status == 200, f"GET /v1/me/balance for {user}: {status} {body}")
    return body["balance"]


def expect(ok, what):
    if not ok:
        raise StepFailed(what)


FIGURES = ("plan", "bonus", "flexible", "held", "debt", "total")


def table(users):
    rows = [("user",) + FIGURES]
    for name, user in users:
        b = balance(user)
        rows.append((name,) + tuple(str(b[f]) for f in FIGURES))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("    " + "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("    " + "  ".join("-" * w for w in widths))


def step(n, title, method, path, body=None, user=None, expect_status=None):
    print(f"\n{n}. {title}")
    print(f"   {method} {path}" + (f"  (as {user})" if user else ""))
    if body is not None:
        print(f"   request:  {json.dumps(body)}")
    status, answer = call(method, path, body, user)
    print(f"   response: {status} {json.dumps(answer)}")
    expect(status == expect_status, f"step {n}: expected {expect_status}, got {status}")
    return answer


def story():
    tag = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    people = [("alice", alice), ("bob", bob)]

    a = step(1, "Alice signs up (free plan: 1,000 credits a month)", "POST", "/v1/signups",
             {"user_id": alice, "email": f"{alice}@example.com"}, expect_status=201)
    expect(a["account"]["balance"]["plan"] == 1000, "alice starts with 1,000 plan credits")
    table(people[:1])

    r = step(2, "Alice opens her referral page and shares the link", "GET", "/v1/me/referral", user=alice, expect_status=200)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(r["link"]).query)["ref"][0]
    expect(code == a["account"]["referral_code"], "the link carries alice's code")

    b = step(3, f"Bob signs up through the link (?ref={code})", "POST", "/v1/signups",
             {"user_id": bob, "email": f"{bob}@example.org", "referral_code": code}, expect_status=201)
    expect(b["referral"] == {"status": "rewarded", "referrer_bonus": 250}, "alice earns the signup bonus")
    table(people)

    u = step(4, "Bob upgrades to Pro", "POST", "/v1/plan-changes",
             {"user_id": bob, "change_id": f"upgrade-{tag}", "plan": "pro"}, expect_status=200)
    expect(u["account"]["balance"]["plan"] == 5000, "bob's plan bucket is topped up to 5,000")
    expect(u["upgrade_bonus"] == {"referrer_bonus": 1500, "plans": ["basic", "pro"]}, "alice earns basic + pro bonuses")
    table(people)

    p = step(5, "Bob buys $10 of flexible credits (Pro: 300 per dollar)", "POST", "/v1/purchases",
             {"user_id": bob, "payment_id": f"pay-{tag}", "amount_cents": 1000, "currency": "USD"}, expect_status=201)
    expect(p["purchase"]["credits"] == 3000, "3,000 flexible credits")
    table(people)

    s = step(6, "Bob spends 5,500 credits (plan first, then flexible)", "POST", "/v1/spends",
             {"user_id": bob, "spend_id": f"spend-{tag}", "credits": 5500, "feature": "video-export"}, expect_status=201)
    expect(s["spend"]["from"] == {"plan": 5000, "bonus": 0, "flexible": 500}, "drawn plan first")
    table(people)

    again = step(7, "The payment back end retries the purchase (same payment_id)", "POST", "/v1/purchases",
                 {"user_id": bob, "payment_id": f"pay-{tag}", "amount_cents": 1000, "currency": "USD"}, expect_status=200)
    expect(again == p, "a replay answers the original receipt, crediting nothing")
    table(people)

    c = step(8, "Bob's bank charges the payment back, after he spent part of it", "POST", "/v1/reversals",
             {"user_id": bob, "reversal_id": f"dispute-{tag}", "payment_id": f"pay-{tag}", "reason": "chargeback"},
             expect_status=201)
    expect(c["reversal"]["from"] == {"plan": 0, "bonus": 0, "flexible": 2500}, "flexible first: all 2,500 left")
    expect(c["reversal"]["debt_added"] == 500 and c["balance"]["debt"] == 500, "the 500 he spent become debt")
    table(people)

    r = step(9, "Bob buys $5 of credits: the debt is repaid first", "POST", "/v1/purchases",
             {"user_id": bob, "payment_id": f"pay2-{tag}", "amount_cents": 500, "currency": "USD"}, expect_status=201)
    expect(r["balance"]["flexible"] == 1000 and r["balance"]["debt"] == 0, "1,500 credits: 500 repay the debt, 1,000 stay")
    entry = step(10, "Bob's ledger shows both parts of that purchase", "GET", "/v1/me/ledger?limit=1", user=bob,
                 expect_status=200)["entries"][0]
    expect(entry["delta"]["flexible"] == 1000 and entry["delta"]["debt"] == -500, "delta: flexible +1,000, debt -500")
    table(people)

    h = step(11, "Alice starts a video render: a hold of 1,500 credits", "POST", "/v1/holds",
             {"user_id": alice, "hold_id": f"render-{tag}", "credits": 1500, "feature": "video-render"},
             expect_status=201)
    expect(h["hold"]["from"] == {"plan": 1000, "bonus": 500, "flexible": 0}, "held in spend order")
    expect(h["balance"]["held"] == 1500, "the credits are held, not spendable")
    table(people)

    c = step(12, "The render finishes: capture 1,200 of the 1,500", "POST", f"/v1/holds/render-{tag}/capture",
             {"user_id": alice, "credits": 1200}, expect_status=200)
    expect(c["hold"]["status"] == "captured" and c["balance"]["held"] == 0, "captured, nothing held any more")
    expect(c["balance"]["bonus"] == 1550, "the 300 not used go back to the bonus bucket they came from")
    table(people)

    low = step(13, "Alice exports a few more videos and is running low", "POST", "/v1/spends",
               {"user_id": alice, "spend_id": f"exports-{tag}", "credits": 1480, "feature": "video-export"},
               expect_status=201)
    expect(low["balance"]["total"] == 70, "70 credits left: below 10% of her 1,000 a month")
    table(people)
    alert = [m for m in ses_messages() if alice in json.dumps(m) and "credits left" in m["subject"]]
    expect(len(alert) == 1, f"one low-balance email to alice, got {len(alert)}")
    print(f"\n   The low-balance email, as the emulated SES received it:\n   subject: {alert[0]['subject']}")
    for line in html_text(alert[0]["body"]):
        print(f"   | {line}")
    options = step(14, "Her dashboard asks the same question: how can I get more credits?", "GET",
                   "/v1/me/credit-options", user=alice, expect_status=200)
    expect(options["buy"]["plans_that_can_buy"] == ["pro", "business"], "free cannot buy; pro and business can")
    expect(options["upgrade"][-1] == {"plan": "business", "monthly_allowance": 20000, "rate_per_dollar": 200,
                                      "credits_now": 19000}, "upgrading to business adds 19,000 today")

    end = datetime.fromisoformat(b["account"]["cycle_end"].replace("Z", "+00:00"))
    tick = (end + timedelta(minutes=1)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"\n15. A rollover tick passes Bob's cycle end ({b['account']['cycle_end']})")
    print(f"   invoke rollover {json.dumps({'time': tick})}")
    report = invoke("rollover", {"time": tick})
    print(f"   response: {json.dumps(report)}")
    expect(report.get("rolled_over", 0) >= 2 and report.get("remaining") is False, "both accounts rolled over")
    after = balance(bob)
    expected = {"plan": 5000, "bonus": 0, "flexible": 1000, "held": 0, "debt": 0, "total": 6000}
    expect(after == expected, f"bob: fresh Pro allowance, flexible kept: {after}")
    table(people)

    print("\n16. Emails the emulator received")
    mails = [m for m in ses_messages() if tag in json.dumps(m)]
    for m in mails:
        print(f"   to {json.dumps(m['to'])}: {m['subject']}")
    expect(len(mails) == 6, "six emails (signup and upgrade bonuses, two receipts, two low-balance: bob's after the "
           f"chargeback emptied his balance, alice's), got {len(mails)}")
    print("\nThe demo behaved as the API reference says.")


def ses_messages():
    with urllib.request.urlopen(f"{EMULATOR}/_emulator/ses/messages", timeout=30) as resp:
        return json.loads(resp.read())


def html_text(html):
    """The paragraphs of an HTML email, as text lines."""
    import html as htmllib
    import re
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", p)) for p in re.findall(r"<p>(.*?)</p>", html)]


def api_up():
    try:
        urllib.request.urlopen(API + "/v1/me/balance", timeout=2)
    except urllib.error.HTTPError:
        return True
    except Exception:
        return False
    return True


def start_service(log_path):
    """Starts `make run` (infra/run.sh), its output in `log_path`; returns the
    process once the API answers, or None (the log's tail printed) when it
    stopped first or took longer than a fresh clone's build."""
    print(f"Starting the local service (make run) for the demo; its output goes to {log_path}.")
    print("On a fresh clone the first build compiles the AWS SDKs: minutes (6.5 on two cores here).")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log = open(log_path, "w")
    service = subprocess.Popen(["bash", os.path.join(ROOT, "infra", "run.sh")], cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return wait_for_service(service, log, log_path)
    except BaseException:
        # Ctrl-C while it builds: run.sh has a session of its own, which the
        # terminal's interrupt does not reach, so it is stopped here.
        stop_service(service)
        raise


def wait_for_service(service, log, log_path):
    """Waits for the API `service` serves; the service stopped and None when
    it stopped first or took longer than a fresh clone's build."""
    started = time.monotonic()
    note = started + 60
    while not api_up():
        waited = time.monotonic() - started
        if service.poll() is not None or waited > 45 * 60:
            why = "stopped" if service.poll() is not None else "did not answer within 45 minutes"
            print(f"the local service {why}; the end of {log_path}:", file=sys.stderr)
            log.flush()
            with open(log_path, errors="replace") as f:
                print("".join(f.readlines()[-20:]), file=sys.stderr)
            stop_service(service)
            return None
        if time.monotonic() >= note:
            note += 60
            print(f"  still starting ({round(waited / 60)} min)...", flush=True)
        time.sleep(1)
    return service


def stop_service(service):
    if service.poll() is None:
        os.killpg(service.pid, signal.SIGTERM)
    try:
        service.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(service.pid, signal.SIGKILL)


def main():
    service = None
    if not api_up():
        service = start_service(os.path.join(ROOT, ".emulator", "demo-run.log"))
        if service is None:
            return 1
    try:
        story()
        return 0
    except StepFailed as e:
        print(f"\nDEMO FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if service is not None:
            stop_service(service)


if __name__ == "__main__":
    sys.exit(main())
