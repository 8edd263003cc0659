#!/usr/bin/env python3
"""worker.py - a jobq worker in plain Python (standard library only), to show the HTTP protocol.

    JOBQ_URL=http://127.0.0.1:8080 JOBQ_TOKEN=<worker token> ./worker.py --queue default

Loop: long-poll claim (POST /v1/queues/{queue}/claim with wait_ms) -> for each job, a
heartbeat thread extends the lease every lease_ms/3 and reports progress -> the handler
for the job's type runs, writing log lines -> complete with a result, or fail with an error
(retryable unless the handler says otherwise). A 409 lease_lost means the server gave the
job to someone else (our lease ran out): drop it without reporting.

Handlers here are toys: "echo" returns its params, "sleep" sleeps params.seconds with
progress, "fail" raises. Replace HANDLERS with real work.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import threading
import time
import urllib.parse


class ApiError(Exception):
    """The server answered with an error object: {"error": {code, message, field}}."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Api:
    """One keep-alive HTTP connection to jobqd; not thread-safe (one per thread)."""

    def __init__(self, url, token, timeout=35.0):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.token, self.timeout, self.conn = token, timeout, None

    def call(self, method, path, body=None, timeout=None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):  # one retry when a kept-alive connection was closed
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=timeout or self.timeout)
            self.conn.timeout = timeout or self.timeout
            if self.conn.sock is not None:
                self.conn.sock.settimeout(self.conn.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        reply = json.loads(raw) if raw else None
        if resp.status >= 400:
            err = (reply or {}).get("error") or {}
            raise ApiError(resp.status, err.get("code", "http_error"), err.get("message", ""))
        return reply


def quote(s):
    return urllib.parse.quote(s, safe="")


# --- handlers: fn(job, report) -> result (any JSON value) ---

def handle_echo(job, report):
    report.log("info", "echoing params")
    return {"echo": job["params"]}


def handle_sleep(job, report):
    seconds = float(job["params"].get("seconds", 1))
    steps = 10
    for i in range(steps):
        time.sleep(seconds / steps)
        report.progress(int((i + 1) * 100 / steps), f"step {i + 1}/{steps}")
    return {"slept": seconds}


def handle_fail(job, report):
    raise RuntimeError(job["params"].get("message", "asked to fail"))


HANDLERS = {"echo": handle_echo, "sleep": handle_sleep, "fail": handle_fail}


class Report:
    """What a handler may do while it runs: log lines and progress (sent with heartbeats)."""

    def __init__(self, api, job):
        self.api, self.job = api, job
        self.percent, self.message = None, None
        self.lock = threading.Lock()

    def log(self, level, message, metadata=None):
        body = {"lease_token": self.job["lease_token"], "level": level, "message": message}
        if metadata is not None:
            body["metadata"] = metadata
        with self.lock:
            self.api.call("POST", f"/v1/jobs/{quote(self.job['id'])}/logs", body)

    def progress(self, percent, message=None):
        self.percent, self.message = percent, message


class Heartbeat(threading.Thread):
    """Extends the lease every lease_ms/3 on its own connection; notes a lost lease."""

    def __init__(self, args, job, report):
        super().__init__(daemon=True)
        self.api = Api(args.url, args.token)
        self.args, self.job, self.report = args, job, report
        self.stop = threading.Event()
        self.lost = False

    def run(self):
        every = self.args.lease_ms / 3000.0
        while not self.stop.wait(every):
            body = {"lease_token": self.job["lease_token"], "lease_ms": self.args.lease_ms}
            if self.report.percent is not None:
                body["progress_percent"] = self.report.percent
            if self.report.message is not None:
                body["progress_message"] = self.report.message
            try:
                self.api.call("POST", f"/v1/jobs/{quote(self.job['id'])}/heartbeat", body)
            except ApiError as e:
                if e.code == "lease_lost":
                    self.lost = True
                    return
                print(f"heartbeat {self.job['id']}: {e}", flush=True)
            except OSError as e:
                print(f"heartbeat {self.job['id']}: {e}", flush=True)


def process(api, args, job):
    jid, lease = quote(job["id"]), job["lease_token"]
    report = Report(api, job)
    hb = Heartbeat(args, job, report)
    hb.start()
    try:
        handler = HANDLERS.get(job["type"])
        if handler is None:
            raise LookupError(f"no handler for type {job['type']!r}")
        report.log("info", f"attempt {job['attempts']} started by {args.worker_id}")
        result = handler(job, report)
        hb.stop.set()
        api.call("POST", f"/v1/jobs/{jid}/complete", {"lease_token": lease, "result": result})
        print(f"{job['id']} completed", flush=True)
    except ApiError as e:
        hb.stop.set()
        if e.code != "lease_lost":
            raise
        print(f"{job['id']} lease lost; dropped", flush=True)
    except Exception as e:  # the job failed: report it, retryable unless unknown type
        hb.stop.set()
        body = {"lease_token": lease, "error_message": str(e)[:8000],
                "error_code": type(e).__name__, "retryable": not isinstance(e, LookupError)}
        try:
            reply = api.call("POST", f"/v1/jobs/{jid}/fail", body)
            print(f"{job['id']} failed -> {reply['status']}", flush=True)
        except ApiError as e2:
            print(f"{job['id']} fail report refused: {e2}", flush=True)
    finally:
        hb.stop.set()
        hb.join()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default=os.environ.get("JOBQ_URL", "http://127.0.0.1:8080"))
    p.add_argument("--token", default=os.environ.get("JOBQ_TOKEN"))
    p.add_argument("--queue", default="default")
    p.add_argument("--worker-id", default=f"worker.py:{socket.gethostname()}:{os.getpid()}")
    p.add_argument("--lease-ms", type=int, default=30000)
    p.add_argument("--wait-ms", type=int, default=25000, help="long-poll wait per claim")
    p.add_argument("--once", action="store_true", help="exit after the first empty claim")
    args = p.parse_args()
    if not args.token:
        p.error("a worker token is needed: --token or JOBQ_TOKEN")

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    api = Api(args.url, args.token)
    claim_path = f"/v1/queues/{quote(args.queue)}/claim"
    claim = {"worker_id": args.worker_id, "lease_ms": args.lease_ms, "max": 1,
             "wait_ms": args.wait_ms}
    while not stopping.is_set():
        try:
            jobs = api.call("POST", claim_path, claim, timeout=args.wait_ms / 1000 + 10)["jobs"]
        except (ApiError, OSError) as e:
            print(f"claim: {e}; retrying in 1 s", flush=True)
            time.sleep(1)
            continue
        if not jobs and args.once:
            break
        for job in jobs:
            process(api, args, job)


if __name__ == "__main__":
    main()
