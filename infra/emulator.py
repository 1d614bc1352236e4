"""Serves moto's DynamoDB and SES v2 on loopback, one request at a time.

moto's stock server is multi-threaded and its DynamoDB is not atomic under
concurrent requests (500 concurrent increments once ended at 499). Serving it
single-threaded makes every request, transactions included, atomic.
"""

import argparse
import logging

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, processes=1, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
