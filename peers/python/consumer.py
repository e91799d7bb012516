#!/usr/bin/env python3
"""Dubbo2 consumer peer built on dubbo-ssl-python 0.9.6 (module ``dubbo_ssl``).

Calls the demo service ``org.apache.dubbo.demo.DemoService`` of peers/README.md over a direct
TCP connection (no registry) and prints ONE JSON object on stdout when done:

    sayHello, add, echoUser, listUsers, fail, now, concurrent

A failing scenario is recorded as {"error": "<ExceptionType>: <message>"} instead of aborting.
Exit status 0 when the script ran to the end; 1 when the overall deadline stopped it or
dubbo_ssl could not be loaded (the JSON is still printed, unfinished scenarios marked as
errors); 2 on bad usage.

Usage:
    peers/python/.venv/bin/python peers/python/consumer.py --port N [--host 127.0.0.1]

What dubbo_ssl puts on the wire (see its codec/encoder.py):
  * header da bb c2 00: request | two-way | serialization 2 (hessian2), status byte 0;
    8-byte request id from a process-wide counter that starts at 0; 4-byte body length.
  * body: dubbo version (default "2.4.10", which keeps providers on response flags 0/1/2, the
    only ones dubbo_ssl parses), service path, service version, method, parameter descriptor,
    the arguments, then an untyped map (H ... Z) of attachments path, interface, version, group.
  * Python ints inside the int32 range are always written as hessian ints ("I" in the
    descriptor), so User.id = 7 goes out as int 0x97, not as a long: the library has no way to
    type a long below 2^31. Java Hessian converts it to the long field on the provider side.
  * POJOs are dubbo_ssl.codec.encoder.Object(class name, dict): a class definition with the
    dict's keys in insertion order, then the instance.

Dates come back as a string formatted with datetime.fromtimestamp(...) in the process's local
time zone and a fixed "+0800" suffix; this script pins TZ=UTC before loading the library and
turns that string back into epoch milliseconds.
"""

import argparse
import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

# dubbo_ssl formats dates with the local time zone; make that UTC so they can be read back.
os.environ["TZ"] = "UTC"
if hasattr(time, "tzset"):
    time.tzset()

INTERFACE = "org.apache.dubbo.demo.DemoService"
USER_CLASS = "org.apache.dubbo.demo.User"
SCENARIOS = ("sayHello", "add", "echoUser", "listUsers", "fail", "now", "concurrent")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Dubbo2 consumer peer (dubbo-ssl-python 0.9.6)")
    p.add_argument("--port", type=int, required=True, help="provider port")
    p.add_argument("--host", default="127.0.0.1", help="provider IPv4 address (default 127.0.0.1)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-call timeout in seconds (5)")
    p.add_argument("--dubbo-version", default="2.4.10",
                   help="dubbo protocol version sent in the body (2.4.10: response flags 0/1/2)")
    p.add_argument("--service-version", default="0.0.0",
                   help="service version sent in the body and attachments (0.0.0 = none)")
    p.add_argument("--group", default="", help="service group attachment ('' = none)")
    p.add_argument("--concurrency", type=int, default=20, help="number of concurrent sayHello calls")
    p.add_argument("--deadline", type=float, default=120.0,
                   help="overall limit in seconds; past it, print what is known and exit 1")
    p.add_argument("--verbose", action="store_true", help="log dubbo_ssl debug output to stderr")
    return p.parse_args(argv)


def error_of(exc):
    msg = str(exc).strip()
    name = type(exc).__name__
    return {"error": "{}: {}".format(name, msg) if msg else name}


def json_safe(value, _seen=None):
    """Plain JSON data from a decoded value (the decoder can return self-referencing dicts)."""
    if _seen is None:
        _seen = set()
    if isinstance(value, (dict, list, tuple)):
        if id(value) in _seen:
            return "<cycle>"
        _seen = _seen | {id(value)}
        if isinstance(value, dict):
            return {str(k): json_safe(v, _seen) for k, v in value.items()}
        return [json_safe(v, _seen) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def date_to_millis(value):
    """dubbo_ssl returns a java.util.Date as '%Y-%m-%dT%H:%M:%S.%f+0800' in local (here UTC) time."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date string, got {!r}".format(value))
    text = value
    if len(text) > 5 and text[-5] in "+-":
        text = text[:-5]
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
    seconds = int((dt - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() // 1)
    return seconds * 1000 + int(round(dt.microsecond / 1000.0))


class Runner:
    def __init__(self, args):
        from dubbo_ssl.client import DubboClient
        from dubbo_ssl.codec.encoder import Object

        self.args = args
        self.Object = Object
        self.client = DubboClient(
            interface=INTERFACE,
            group=args.group,
            version=args.service_version,
            dubbo_version=args.dubbo_version,
            host="{}:{}".format(args.host, args.port),
            verify=None,  # plain TCP
        )
        self.results = {}
        self.lock = threading.Lock()

    def call(self, method, call_args=()):
        return self.client.call(method=method, args=list(call_args), timeout=self.args.timeout)

    def record(self, key, fn):
        try:
            value = json_safe(fn())
        except Exception as exc:  # every failure becomes data, never an abort
            value = error_of(exc)
        with self.lock:
            self.results[key] = value

    def concurrent(self):
        n = self.args.concurrency

        def one(i):
            try:
                return json_safe(self.call("sayHello", ["c{}".format(i)]))
            except Exception as exc:
                return error_of(exc)

        with ThreadPoolExecutor(max_workers=max(1, n)) as pool:
            futures = [pool.submit(one, i) for i in range(n)]
            return [f.result() for f in futures]

    def run(self):
        user = self.Object(USER_CLASS, {
            "id": 7,  # sent as a hessian int: dubbo_ssl cannot type a small long
            "name": "alice",
            "age": 30,
            "email": "a@example.com",
        })
        self.record("sayHello", lambda: self.call("sayHello", ["world"]))
        self.record("add", lambda: self.call("add", [2, 3]))
        self.record("echoUser", lambda: self.call("echoUser", [user]))
        self.record("listUsers", lambda: self.call("listUsers", [3]))
        self.record("fail", lambda: self.call("fail", ["boom"]))
        self.record("now", lambda: date_to_millis(self.call("now")))
        self.record("concurrent", self.concurrent)


def main(argv):
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # dubbo_ssl logs every failed call with a traceback; keep stderr quiet unless asked.
    logging.getLogger("dubbo_ssl").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)

    printed = threading.Lock()
    state = {"done": False}

    def emit(results, code):
        with printed:
            if state["done"]:
                return
            state["done"] = True
            out = {}
            for key in SCENARIOS:
                out[key] = results.get(key, {"error": "not finished: overall deadline of {}s passed"
                                              .format(args.deadline)})
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
            sys.stderr.flush()
            # Leave without joining the library's daemon threads or any stuck worker.
            os._exit(code)

    holder = {}

    def on_deadline():
        runner = holder.get("runner")
        if runner is None:
            emit({}, 1)
        with runner.lock:
            snapshot = dict(runner.results)
        emit(snapshot, 1)

    watchdog = threading.Timer(args.deadline, on_deadline)
    watchdog.daemon = True
    watchdog.start()

    try:
        runner = Runner(args)
    except Exception as exc:  # e.g. dubbo_ssl not installed: nothing could run
        err = error_of(exc)
        emit({key: err for key in SCENARIOS}, 1)
    holder["runner"] = runner
    runner.run()
    emit(runner.results, 0)


if __name__ == "__main__":
    main(sys.argv[1:])
