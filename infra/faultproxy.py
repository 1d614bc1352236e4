"""A fault-injecting HTTP proxy between the functions and the emulator.

The functions reach it through `AWS_ENDPOINT_URL` like any endpoint; it
forwards each request to the emulator and, with probability `rate` (drawn
from a seeded RNG, so a run can be replayed), injects one fault of a kind
that real DynamoDB or SES produce under load:

  DynamoDB (every operation)
    internal_error      500 InternalServerError
    throttling          400 ThrottlingException
    throughput          400 ProvisionedThroughputExceededException
    conflict            400 TransactionCanceledException [TransactionConflict]
                        (TransactWriteItems and TransactGetItems only)
    reset_before        the connection is cut before the request is forwarded
    reset_after         the request is forwarded and takes effect, then the
                        connection is cut: the caller never learns it
    latency             50-400 ms before forwarding
  SES v2 (SendEmail)
    internal_error      500 InternalFailure
    throttling          429 TooManyRequestsException
    reset_after         SES accepted the email; the answer is lost

Control, for the tests: `POST /__faults {"rate": 0.3, "seed": 7}` sets the
rate and restarts the RNG and the counters; `GET /__faults` returns the
counters (requests per operation, faults per kind and operation). The rate
and the counters cover every request through the proxy, whoever sends it:
each test that injects faults starts a proxy of its own (`FaultProxy` in
tests/src/emulator.rs).

Stalls, for the timeout tests: `POST /__faults/stall {"operation":
"TransactWriteItems", "table": "t", "count": 1, "forward": true}` makes the
next `count` requests of that operation naming table `t` go silent: the
connection stays open and unanswered (after the request was forwarded and
took effect, with `forward`) until the caller gives up and closes it, or 60 s
pass. With `"delay": 0.1` instead, each of them is answered, 0.1 s late.
Stalls are counted under "stall" with the faults.

Usage: faultproxy.py --port PORT --upstream http://127.0.0.1:EMULATOR_PORT
(port 0 picks a free one; the chosen port is printed as `listening on PORT`).
"""

import argparse
import http.client
import http.server
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse

DYNAMODB_PREFIX = "DynamoDB_20120810."
TRANSACTIONS = ("TransactWriteItems", "TransactGetItems")


class Faults:
    """The RNG, the rate and the counters, shared by every handler thread."""

    def __init__(self, rate: float, seed: int):
        self.lock = threading.Lock()
        self.reset(rate, seed)

    def reset(self, rate: float, seed: int) -> None:
        with self.lock:
            self.rate = rate
            self.seed = seed
            self.rng = random.Random(seed)
            self.requests: dict = {}
            self.injected: dict = {}
            self.stalls: list = []

    def add_stall(self, operation: str, table: str, count: int, forward: bool, delay) -> None:
        with self.lock:
            self.stalls.append({"operation": operation, "needle": json.dumps(table).encode(),
                                "count": count, "forward": forward, "delay": delay})

    def take_stall(self, operation: str, body: bytes):
        """The stall this request gets, or None."""
        with self.lock:
            for stall in self.stalls:
                if stall["count"] > 0 and stall["operation"] == operation and stall["needle"] in body:
                    stall["count"] -= 1
                    by_op = self.injected.setdefault("stall", {})
                    by_op[operation] = by_op.get(operation, 0) + 1
                    return dict(stall)
            return None

    def draw(self, service: str, operation: str):
        """Counts the request; returns the fault to inject, or None."""
        with self.lock:
            self.requests[operation] = self.requests.get(operation, 0) + 1
            if self.rate <= 0 or self.rng.random() >= self.rate:
                return None, 0.0
            if service == "dynamodb":
                kinds = ["internal_error", "throttling", "throughput", "reset_before", "reset_after", "latency"]
                if operation in TRANSACTIONS:
                    kinds.append("conflict")
            else:
                kinds = ["internal_error", "throttling", "reset_after"]
            kind = self.rng.choice(kinds)
            delay = self.rng.uniform(0.05, 0.4) if kind == "latency" else 0.0
            by_op = self.injected.setdefault(kind, {})
            by_op[operation] = by_op.get(operation, 0) + 1
            return kind, delay

    def report(self) -> dict:
        with self.lock:
            return {"rate": self.rate, "seed": self.seed, "requests": dict(self.requests),
                    "faults": {k: dict(v) for k, v in self.injected.items()}}


def dynamodb_error(status: int, error_type: str, message: str, extra: "dict | None" = None):
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message}
    body.update(extra or {})
    return status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": error_type}, body


def ses_error(status: int, error_type: str, message: str):
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}, {"message": message}


def injected_answer(kind: str, service: str, operation: str, request_body: bytes):
    if service == "ses":
        if kind == "internal_error":
            return ses_error(500, "InternalFailure", "injected: internal failure")
        return ses_error(429, "TooManyRequestsException", "injected: maximum sending rate exceeded")
    if kind == "internal_error":
        return dynamodb_error(500, "InternalServerError", "injected: internal server error")
    if kind == "throttling":
        return dynamodb_error(400, "ThrottlingException", "injected: rate of requests exceeds the allowed throughput")
    if kind == "throughput":
        return dynamodb_error(400, "ProvisionedThroughputExceededException", "injected: throughput exceeded")
    # conflict: one cancellation reason per item of the transaction
    try:
        items = len(json.loads(request_body or b"{}").get("TransactItems", [])) or 1
    except ValueError:
        items = 1
    reasons = [{"Code": "None"} for _ in range(items)]
    reasons[-1] = {"Code": "TransactionConflict", "Message": "injected: transaction is ongoing for the item"}
    codes = ", ".join(r["Code"] for r in reasons)
    return dynamodb_error(400, "TransactionCanceledException",
                          f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                          {"CancellationReasons": reasons})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # or every answer waits ~40 ms on a delayed ACK
    # Buffered: an answer's head and body leave in one write, as a server's
    # small answers do, instead of two segments that wake the client twice
    # (the handler flushes after each request).
    wbufsize = -1
    faults: Faults
    upstream: urllib.parse.ParseResult

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__faults"):
            return self.control(body)
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith(DYNAMODB_PREFIX):
            service, operation = "dynamodb", target[len(DYNAMODB_PREFIX):]
        elif self.command == "POST" and self.path.split("?")[0] == "/v2/email/outbound-emails":
            service, operation = "ses", "SendEmail"
        else:
            return self.answer(*self.forward(body))
        kind, delay = self.faults.draw(service, operation)
        stall = self.faults.take_stall(operation, body)
        if stall is not None and stall["delay"] is not None:
            time.sleep(stall["delay"])
            return self.answer(*self.forward(body))
        if stall is not None:
            if stall["forward"]:
                self.forward(body)
            return self.stall()
        if kind is None:
            return self.answer(*self.forward(body))
        if kind == "latency":
            time.sleep(delay)
            return self.answer(*self.forward(body))
        if kind == "reset_before":
            return self.reset()
        if kind == "reset_after":
            self.forward(body)
            return self.reset()
        status, headers, payload = injected_answer(kind, service, operation, body)
        return self.answer(status, headers, json.dumps(payload).encode())

    def forward(self, body: bytes):
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            headers = {k: v for k, v in resp.getheaders()
                       if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")}
            return resp.status, headers, data
        finally:
            conn.close()

    def answer(self, status: int, headers: dict, data: bytes):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stall(self):
        """Answers nothing until the caller closes the connection (60 s at most)."""
        self.close_connection = True
        try:
            self.connection.settimeout(60)
            while self.connection.recv(4096):
                pass
        except OSError:
            pass

    def reset(self):
        """Cuts the connection with a TCP reset, answering nothing."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def control(self, body: bytes):
        if self.command == "POST" and self.path.startswith("/__faults/stall"):
            settings = json.loads(body or b"{}")
            delay = settings.get("delay")
            self.faults.add_stall(str(settings["operation"]), str(settings["table"]),
                                  int(settings.get("count", 1)), bool(settings.get("forward", False)),
                                  None if delay is None else float(delay))
        elif self.command == "POST":
            settings = json.loads(body or b"{}")
            self.faults.reset(float(settings.get("rate", 0)), int(settings.get("seed", 0)))
        data = json.dumps(self.faults.report()).encode()
        self.answer(200, {"Content-Type": "application/json"}, data)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # a reset connection is the point, not an error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    Handler.faults = Faults(args.rate, args.seed)
    Handler.upstream = urllib.parse.urlparse(args.upstream)
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
