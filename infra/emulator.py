"""Serves moto's DynamoDB and SES v2 on loopback, one request at a time.

Changes to moto's stock server, for correctness and speed of the tests,
none visible to the functions:

* Single-threaded: moto's DynamoDB is not atomic under concurrent requests
  (500 concurrent increments once ended at 499). One request at a time makes
  every request, transactions included, atomic.
* Tables list their items without sorting them through DynamoType's Python
  comparisons: stock moto sorts the whole table that way on every query
  (seconds per query at 80,000 items); here the same order comes from plain
  tuples.
* `GET /_emulator/ses/messages` lists the messages SES accepted, straight
  from the backend (`/moto-api/data.json` walks every object ever created
  and takes tens of seconds on long runs).
* Transactions back up only the items they touch: stock moto deep-copies the
  whole table for every item of every TransactWriteItems (to roll back on a
  cancellation), so a transaction's cost grows with the table. Here the
  touched items are snapshotted, and restored if the transaction is
  cancelled; the outcome is the same, the cost no longer depends on the table.
"""

import argparse
import copy
import json
import logging

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_stock_transact_write_items = DynamoDBBackend.transact_write_items
_real_deepcopy = copy.deepcopy


class _TablesNotCopied:
    """Within the block, moto's deepcopy of a whole Table returns the table itself."""

    def __enter__(self):
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else _real_deepcopy(value, memo)

        dynamodb_models.copy = _CopyModule(deepcopy)

    def __exit__(self, *exc):
        dynamodb_models.copy = copy
        return False


class _CopyModule:
    def __init__(self, deepcopy):
        self.deepcopy = deepcopy
        self.copy = copy.copy


def _key_of(backend, op):
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None, None
    if "Key" in op:
        return table.name, op["Key"]
    item = op.get("Item", {})
    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
    if not all(n in item for n in names):
        return None, None
    return table.name, {n: item[n] for n in names}


def transact_write_items(self, transact_items):
    snapshots = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        name, key = _key_of(self, op)
        if name is None:
            continue
        try:
            current = self.get_item(name, key)
        except Exception:  # an invalid key: moto's own call reports it
            continue
        before = _real_deepcopy(current.to_json()["Attributes"]) if current else None
        snapshots.append((name, key, before))
    try:
        with _TablesNotCopied():
            return _stock_transact_write_items(self, transact_items)
    except Exception:
        for name, key, before in reversed(snapshots):
            if before is None:
                if self.get_item(name, key) is not None:
                    self.delete_item(name, key)
            else:
                self.put_item(name, before)
        raise


DynamoDBBackend.transact_write_items = transact_write_items


def _sort_key(value):
    if value is None:
        return (0, "", 0.0)
    if value.type == "N":
        return (1, "", float(value.value))
    return (2, str(value.value), 0.0)


def all_items(self):
    items = []
    for hash_set in self.items.values():
        if self.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    return sorted(items, key=lambda x: (_sort_key(x.hash_key), _sort_key(x.range_key)))


Table.all_items = all_items


def ses_messages() -> list:
    """Every message the emulated SES accepted, oldest first."""
    from moto.ses.models import ses_backends

    out = []
    for account_id in list(ses_backends.keys()):
        for region, backend in list(ses_backends[account_id].items()):
            for m in getattr(backend, "sent_messages", []):
                destinations = getattr(m, "destinations", {}) or {}
                to = destinations.get("ToAddresses", []) if isinstance(destinations, dict) else list(destinations)
                out.append({"id": m.id, "source": m.source, "to": to,
                            "subject": getattr(m, "subject", ""), "body": getattr(m, "body", "")})
    return out


def with_emulator_routes(app):
    """The moto application, with this emulator's own read-only routes."""

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") == "/_emulator/ses/messages":
            body = json.dumps(ses_messages()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = with_emulator_routes(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=False, processes=1, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
