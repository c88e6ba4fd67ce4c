#!/usr/bin/env python3
"""Time from a report's preliminary to the people who wait for it.

For each of STUDIES studies (pushed with `telerad push`, assigned by the
router to the radiologist on duty), the radiologist claims the study, saves a
draft and issues the preliminary report (POST .../report/preliminary); the
clock starts when that request is sent. Two receivers stop it:
  - the site's clinician's server-sent event stream (GET /api/events/stream),
    read on a thread by an HTTP client: the `preliminary` event of that study;
  - the site's webhook endpoint (an HTTP server here, Standard Webhooks
    signature checked): the `report.preliminary` call of that study.
Preliminaries are issued one at a time (the next once both receivers had the
last), so each figure is a latency, not a queue. Prints medians and p99 as a
markdown table, and the POST's own answer time for scale.

Usage: bench/notify_latency.py [--binary target/release/telerad]
       [--fixtures target/release/telerad-fixtures] [--studies 100]
       [--postgres postgres://postgres@127.0.0.1:5432/postgres]
Standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

SECRET = "whsec_" + base64.b64encode(b"bench-secret-of-the-site-endpoint").decode()
PASSWORD = "a password for the benchmark"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Arrivals:
    """Monotonic arrival times by (channel, study UID)."""

    def __init__(self):
        self.lock = threading.Condition()
        self.times = {}

    def record(self, channel, uid):
        now = time.monotonic()
        with self.lock:
            self.times.setdefault((channel, uid), now)
            self.lock.notify_all()

    def wait(self, keys, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(k in self.times for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True


def webhook_server(arrivals):
    key = base64.b64decode(SECRET[len("whsec_"):])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            msg_id = self.headers.get("webhook-id", "")
            stamp = self.headers.get("webhook-timestamp", "")
            signed = f"{msg_id}.{stamp}.".encode() + body
            expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            if expected not in self.headers.get("webhook-signature", "").split(" "):
                self.send_response(401)
                self.end_headers()
                return
            payload = json.loads(body)
            if payload.get("type") == "report.preliminary":
                arrivals.record("webhook", payload["data"]["study_instance_uid"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def follow_stream(port, token, arrivals, ready, stop):
    """Reads the event stream, reconnecting (Last-Event-ID) when it ends."""
    last = None
    while not stop.is_set():
        try:
            last = read_stream(port, token, arrivals, ready, last)
        except OSError:
            # The server stopped, or restarts its stream: try again.
            time.sleep(0.2)


def read_stream(port, token, arrivals, ready, last):
    """One connection of the event stream; the last event id read."""
    if True:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
        if last is not None:
            headers["last-event-id"] = last
        conn.request("GET", "/api/events/stream", headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"event stream: HTTP {response.status}")
        ready.set()
        kind, data, event_id = "", "", None
        while True:
            line = response.fp.readline()
            if not line:
                return last
            line = line.decode().rstrip("\r\n")
            if line == "":
                if kind == "preliminary" and data:
                    arrivals.record("sse", json.loads(data)["study_instance_uid"])
                if event_id is not None:
                    last = event_id
                kind, data, event_id = "", "", None
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line.startswith("id:"):
                event_id = line[3:].strip()


class Api:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, token, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "target"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(target, "release", "telerad"))
    parser.add_argument("--fixtures", default=os.path.join(target, "release", "telerad-fixtures"))
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="telerad-bench-notify-")
    arrivals = Arrivals()
    hooks = webhook_server(arrivals)
    dicom_port, http_port = free_port(), free_port()
    database_url = f"sqlite://{work}/index.db?mode=rwc"
    pg_name = None
    if args.postgres:
        pg_name = "bench_notify_" + uuid.uuid4().hex[:8]
        subprocess.run(["psql", "-q", args.postgres, "-c", f"CREATE DATABASE {pg_name}"], check=True)
        database_url = args.postgres.rsplit("/", 1)[0] + "/" + pg_name
    config = f"""
[dicom]
ae_title = "TELERAD"
bind = "127.0.0.1"
port = {dicom_port}

[http]
bind = "127.0.0.1"
port = {http_port}

[storage]
data_dir = "{work}/data"
database_url = "{database_url}"

[studies]
default_quiet_period_secs = 1

[[sites]]
name = "bench"
ae_titles = ["TELERAD_SCU"]
time_zone = "Europe/Paris"
webhook = {{ url = "http://127.0.0.1:{hooks.server_address[1]}/hook", secret = "{SECRET}" }}

[[radiologists]]
id = "dr-night"
name = "Dr Night"
subspecialties = ["general"]
sites = ["bench"]
max_open_studies = 100000

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-night"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[sla]
stat = {{ acknowledge_secs = 86400, preliminary_secs = 86400 }}
urgent = {{ acknowledge_secs = 86400, preliminary_secs = 86400 }}
routine = {{ acknowledge_secs = 86400, preliminary_secs = 86400 }}
"""
    config_path = os.path.join(work, "telerad.toml")
    with open(config_path, "w") as f:
        f.write(config)
    server = subprocess.Popen(
        [args.binary, "serve", "--config", config_path],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "server.log"), "w"),
    )
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz")
                break
            except OSError:
                time.sleep(0.05)

        def cli(*argv, stdin=None):
            return subprocess.run(
                [args.binary, *argv, "--config", config_path],
                input=stdin, capture_output=True, text=True, check=True,
            ).stdout.strip()

        cli("user", "add", "rad", "--role", "radiologist", "--radiologist", "dr-night", stdin=PASSWORD + "\n")
        cli("user", "add", "clin", "--role", "clinician", "--site", "bench", stdin=PASSWORD + "\n")
        rad = cli("token", "create", "rad", "--name", "bench")
        clin = cli("token", "create", "clin", "--name", "bench")
        api = Api(http_port)

        print(f"generating and pushing {args.studies} studies", file=sys.stderr)
        uids = []
        for i in range(args.studies):
            out = os.path.join(work, "studies", str(i))
            subprocess.run(
                [args.fixtures, "generate", "--modality", "ct", "--slices", "1",
                 "--rows", "64", "--columns", "64", "--out", out],
                check=True, capture_output=True,
            )
        subprocess.run(
            [args.binary, "push", os.path.join(work, "studies"), "--to", f"TELERAD@127.0.0.1:{dicom_port}"],
            check=True, capture_output=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, page = api.call(rad, "GET", f"/api/worklist?mine=true&limit={args.studies}")
            if status == 200 and len(page["items"]) >= args.studies:
                uids = [item["study_instance_uid"] for item in page["items"]]
                break
            time.sleep(0.2)
        if len(uids) < args.studies:
            raise SystemExit(f"only {len(uids)} of {args.studies} studies assigned")

        ready, stop = threading.Event(), threading.Event()
        threading.Thread(
            target=follow_stream, args=(http_port, clin, arrivals, ready, stop), daemon=True
        ).start()
        ready.wait(10)

        sse, webhook, answer = [], [], []
        for uid in uids:
            assert api.call(rad, "POST", f"/api/studies/{uid}/acknowledge")[0] == 200
            draft = {"template": "free-text", "fields": {"conclusion": "No acute finding."}}
            assert api.call(rad, "PUT", f"/api/studies/{uid}/report/draft", draft)[0] == 200
            start = time.monotonic()
            status, body = api.call(rad, "POST", f"/api/studies/{uid}/report/preliminary")
            answered = time.monotonic()
            if status != 200:
                raise SystemExit(f"preliminary of {uid}: {status} {body}")
            if not arrivals.wait([("sse", uid), ("webhook", uid)], 30):
                raise SystemExit(f"{uid}: not delivered within 30 s")
            answer.append((answered - start) * 1000)
            sse.append((arrivals.times[("sse", uid)] - start) * 1000)
            webhook.append((arrivals.times[("webhook", uid)] - start) * 1000)

        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\n{backend}, {len(uids)} preliminaries, one at a time (ms from the POST):\n")
        print("| to | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|")
        for name, values in [("POST answered (committed)", answer), ("SSE event at the clinician", sse),
                             ("webhook at the site's endpoint", webhook)]:
            print(f"| {name} | {statistics.median(values):.1f} | {percentile(values, 90):.1f} | "
                  f"{percentile(values, 99):.1f} | {max(values):.1f} |")
    finally:
        if "stop" in locals():
            stop.set()
        server.terminate()
        server.wait(timeout=30)
        hooks.shutdown()
        if pg_name:
            subprocess.run(["psql", "-q", args.postgres, "-c", f"DROP DATABASE IF EXISTS {pg_name}"])


if __name__ == "__main__":
    main()
