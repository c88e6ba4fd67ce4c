#!/usr/bin/env python3
"""Time to radiologist on loopback, per completion mode.

For each mode a fresh `telerad serve` (own data folder and SQLite index)
receives STUDIES small CT studies (4 slices of 64x64), one at a time, sent
by DCMTK `storescu` as the scanner. Every study is STAT (one rule), so the
router pages the radiologist on duty through their webhook, served here.
For each study three instants are taken:
  - last image acknowledged: the study's `last_received_at` (telerad's
    clock, when the last instance was indexed, just before its C-STORE
    success);
  - assigned: its assignment's `assigned_at` (telerad's clock);
  - notified: the arrival of the `study.assigned` webhook call at the
    pager endpoint (this script's wall clock: the same machine's clock).
Modes:
  - quiet: the site's quiet period (QUIET seconds) alone completes a study;
  - release: `complete_on_release_secs = GRACE`: the release of storescu's
    association completes it;
  - mpps: this script is also the modality's MPPS SCU (pynetdicom, in this
    process): N-CREATE IN PROGRESS before the images, N-SET COMPLETED with
    the four instances right after storescu ends; the quiet period stays
    QUIET seconds. The N-SET's own delay after the last image (the
    modality's share) is reported apart.
Prints markdown: p50/p90/p99/max per mode, in ms.

Usage: bench/time_to_radiologist.py [--binary target/release/telerad]
       [--fixtures target/release/telerad-fixtures] [--studies 20]
       [--quiet 5] [--grace 0] [--modes quiet,release,mpps]
Needs DCMTK (storescu) and pynetdicom.
"""

import argparse
import http.server
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS

SECRET = "whsec_YmVuY2gtc2VjcmV0LW9mLXRoZS1wYWdlci1lbmRwb2ludA=="
PASSWORD = "a password for the benchmark"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def dcmtk_storescu():
    for candidate in ["/usr/bin/storescu", "/usr/local/bin/storescu"]:
        if os.access(candidate, os.X_OK):
            banner = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
            if banner.startswith("$dcmtk:"):
                return candidate
    raise SystemExit("DCMTK's storescu is not installed (apt-get install dcmtk)")


class Pages:
    """Wall-clock arrival (ms) of each study's `study.assigned` call."""

    def __init__(self):
        self.lock = threading.Condition()
        self.times = {}

    def record(self, uid):
        now = time.time() * 1000
        with self.lock:
            self.times.setdefault(uid, now)
            self.lock.notify_all()

    def wait(self, uid, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while uid not in self.times:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)
            return self.times[uid]


def pager(pages):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            if body.get("type") == "study.assigned":
                pages.record(body["data"]["study_instance_uid"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ms(text):
    """An API time (RFC 3339, UTC, maybe with a fraction) in ms."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def run_mode(args, mode, studies, storescu, pages, hook_port):
    work = tempfile.mkdtemp(prefix=f"telerad-bench-ttr-{mode}-")
    dicom_port, http_port = free_port(), free_port()
    site_extra = f"complete_on_release_secs = {args.grace}" if mode == "release" else ""
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
database_url = "sqlite://{work}/index.db?mode=rwc"

[studies]
default_quiet_period_secs = {args.quiet}

[[sites]]
name = "bench"
ae_titles = ["STORESCU", "MODALITY"]
time_zone = "Europe/Paris"
{site_extra}

[[radiologists]]
id = "dr-night"
name = "Dr Night"
subspecialties = ["general"]
sites = ["bench"]
max_open_studies = 100000
webhook = {{ url = "http://127.0.0.1:{hook_port}/page", secret = "{SECRET}" }}

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-night"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "00:00"

[[rules]]
name = "every-ct-is-stat"
modality = "CT"
subspecialty = "general"
priority = "stat"

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
    rows = []
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz")
                break
            except OSError:
                time.sleep(0.05)
        token = subprocess.run(
            [args.binary, "token", "create", "admin", "--name", "bench", "--config", config_path],
            capture_output=True, text=True, check=True,
        ).stdout.strip()

        def study(uid):
            request = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/studies/{uid}")
            request.add_header("authorization", f"Bearer {token}")
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())

        modality = AE(ae_title="MODALITY")
        modality.add_requested_context(MPPS)
        for n, folder in enumerate(studies):
            # A random pause first: studies sent at a fixed pace would meet
            # the 250 ms completion sweep at the same phase every time.
            time.sleep(random.uniform(0, 0.5))
            files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
            first = dcmread(files[0], stop_before_pixels=True)
            uid = first.StudyInstanceUID
            step_uid = f"{uid}.1"
            if mode == "mpps":
                ds = Dataset()
                scheduled = Dataset()
                scheduled.StudyInstanceUID = uid
                ds.ScheduledStepAttributesSequence = [scheduled]
                ds.PerformedProcedureStepStatus = "IN PROGRESS"
                ds.Modality = "CT"
                assoc = modality.associate("127.0.0.1", dicom_port, ae_title="TELERAD")
                status, _ = assoc.send_n_create(ds, MPPS, step_uid)
                assoc.release()
                assert status.Status == 0, f"N-CREATE: {status}"
            subprocess.run(
                [storescu, "-aet", "STORESCU", "-aec", "TELERAD", "127.0.0.1", str(dicom_port), *files],
                check=True, capture_output=True,
            )
            n_set_at = None
            if mode == "mpps":
                ds = Dataset()
                ds.PerformedProcedureStepStatus = "COMPLETED"
                series = Dataset()
                series.SeriesInstanceUID = first.SeriesInstanceUID
                refs = []
                for path in files:
                    instance = dcmread(path, stop_before_pixels=True)
                    ref = Dataset()
                    ref.ReferencedSOPClassUID = instance.SOPClassUID
                    ref.ReferencedSOPInstanceUID = instance.SOPInstanceUID
                    refs.append(ref)
                series.ReferencedImageSequence = refs
                ds.PerformedSeriesSequence = [series]
                assoc = modality.associate("127.0.0.1", dicom_port, ae_title="TELERAD")
                n_set_at = time.time() * 1000
                status, _ = assoc.send_n_set(ds, MPPS, step_uid)
                assoc.release()
                assert status.Status == 0, f"N-SET: {status}"
            paged = pages.wait(uid, args.quiet + 30)
            if paged is None:
                raise SystemExit(f"{mode}: study {uid} not paged within {args.quiet + 30} s")
            detail = study(uid)
            last = ms(detail["last_received_at"])
            assigned = ms(detail["assignment"]["assigned_at"])
            rows.append({
                "assigned": assigned - last,
                "notified": paged - last,
                "n_set_after_last": None if n_set_at is None else n_set_at - last,
                "assigned_after_n_set": None if n_set_at is None else assigned - n_set_at,
            })
            print(f"{mode} {n + 1}/{len(studies)}: assigned {assigned - last:.0f} ms, "
                  f"paged {paged - last:.0f} ms after the last image", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(here, "..", "target"))
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(target, "release", "telerad"))
    parser.add_argument("--fixtures", default=os.path.join(target, "release", "telerad-fixtures"))
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--quiet", type=int, default=5)
    parser.add_argument("--grace", type=int, default=0)
    parser.add_argument("--modes", default="quiet,release,mpps")
    args = parser.parse_args()
    storescu = dcmtk_storescu()
    pages = Pages()
    hooks = pager(pages)
    results = {}
    for mode in args.modes.split(","):
        folder = tempfile.mkdtemp(prefix=f"telerad-bench-ttr-studies-{mode}-")
        studies = []
        for i in range(args.studies):
            out = os.path.join(folder, str(i))
            subprocess.run(
                [args.fixtures, "generate", "--modality", "ct", "--slices", "4",
                 "--rows", "64", "--columns", "64", "--out", out],
                check=True, capture_output=True,
            )
            studies.append(out)
        results[mode] = run_mode(args, mode, studies, storescu, pages, hooks.server_address[1])
    hooks.shutdown()

    print(f"\n{platform.node()}, {os.cpu_count()} cores; {args.studies} STAT studies of 4 slices per mode, "
          f"one at a time, each mode on a fresh server (SQLite); quiet period {args.quiet} s, "
          f"release grace {args.grace} s. ms after the last image was acknowledged:\n")
    print("| mode | to | p50 | p90 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for mode, rows in results.items():
        lines = [("assignment", "assigned"), ("radiologist paged (webhook)", "notified")]
        if mode == "mpps":
            lines += [("(the modality's N-SET sent)", "n_set_after_last"),
                      ("assignment after the N-SET", "assigned_after_n_set")]
        for label, key in lines:
            values = [r[key] for r in rows]
            print(f"| {mode} | {label} | {statistics.median(values):.0f} | {percentile(values, 90):.0f} | "
                  f"{percentile(values, 99):.0f} | {max(values):.0f} |")


if __name__ == "__main__":
    main()
