"""The load comparison behind bench/compare: poco-httpd vs bare hyper, axum, actix-web
and nginx, side by side in one run.

Builds the servers of bench/servers in release mode, then, alternating the order of
the servers from run to run so that drift on a shared machine hits all alike, with
server and load generator pinned to different cores:

* HTTP/1.1: `GET /a/b/c.txt` with wrk over keep-alive at a low and a high
  connection count (requests/s, p50, p99), ours vs hyper vs axum vs actix-web;
* static files: a 1 KiB and a 100 KiB file with wrk, and a 1 GiB download with
  curl, ours (`StaticFiles`) vs nginx (one worker, its own config in a temporary
  directory; installed with apt if missing);
* HTTP/2: h2load, 100 streams per connection (h2c), ours vs hyper vs axum vs actix;
* TLS 1.3: keep-alive requests/s, and new handshakes/s (wrk sending
  `Connection: close`), ours vs hyper with tokio-rustls vs nginx;
* idle keep-alive connections at several counts: resident memory per connection;
  and the same counts with a request in flight on each (`/hold`, answered after
  30 s): resident memory per connection with its request, and per request (the
  difference between the two);
  a 1 GiB streamed response (MB/s);
* instructions per request counted by callgrind (bench/callgrind), one worker, for
  each server: the repeatable figure where wall-clock ones are not.

Prints medians, per-run spreads and ratios (each the median of the per-run ratios),
writes results.json and chart.svg, and ends with machine-readable lines:
`ratio_vs_hyper`, `ratio_vs_actix`, `static_small_vs_nginx`,
`static_large_vs_nginx`, `h2_vs_hyper` (ours / other, each X.XX).
Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP_SERVERS = ["ours", "hyper", "axum", "actix"]
STATIC_SERVERS = ["ours", "nginx"]
TLS_SERVERS = ["ours", "hyper", "nginx"]
ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
HELLO_PATH = "/a/b/c.txt"
HELLO_BODY = "Hello, world!"
STREAM_PATH = "/stream"
STATIC_FILES = {"1k": 1024, "100k": 100 * 1024, "1g": 1 << 30}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measurements per server and load (default 5)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk/h2load run (default 10)")
    parser.add_argument("--low", type=int, default=16, help="the low connection count (default 16)")
    parser.add_argument("--high", type=int, default=256, help="the high connection count (default 256)")
    parser.add_argument("--static-conns", type=int, default=64, help="connections for static files (default 64)")
    parser.add_argument("--h2-conns", type=int, default=4, help="HTTP/2 connections, 100 streams each (default 4)")
    parser.add_argument("--tls-conns", type=int, default=64, help="TLS keep-alive connections (default 64)")
    parser.add_argument("--idle", default="100,1000,10000", help="idle connection counts for the memory test")
    parser.add_argument("--callgrind-secs", type=int, default=6, help="seconds of load under callgrind (default 6)")
    parser.add_argument("--quick", action="store_true", help="every part, 2 runs of 2 s, few idle connections: a smoke test")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where results.json and chart.svg go")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.idle, args.callgrind_secs = 2, 2, "100,1000", 2
    args.idle_counts = [int(n) for n in args.idle.split(",")]
    return args


def cores():
    """(server cores, load generator cores) as taskset lists: halves of the machine."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    half = len(available) // 2
    as_list = lambda cs: ",".join(str(c) for c in cs)
    return as_list(available[:half]), as_list(available[half:])


SERVER_CORES, LOAD_CORES = cores()


def pinned(command, core_list):
    return ["taskset", "-c", core_list, *command] if core_list else command


def server_threads():
    return len(SERVER_CORES.split(",")) if SERVER_CORES else 1


class Server:
    """One benchmark server on a free loopback port, for a `with` block. `env` adds
    settings (a static root, a TLS certificate)."""

    def __init__(self, name, env=None, scheme="http", threads=None, cores=None):
        self.name = name
        self.env = env or {}
        self.scheme = scheme
        self.threads = threads or server_threads()
        self.cores = cores or SERVER_CORES
        self.process = None
        self.url = None

    def __enter__(self):
        env = dict(os.environ, BENCH_THREADS=str(self.threads), **self.env)
        command = pinned([str(BIN / f"bench-{self.name}"), "127.0.0.1:0"], self.cores)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        match = re.search(r"http://(\S+)", line)
        if not match:
            self.process.kill()
            sys.exit(f"bench-{self.name} did not start: {line!r}")
        self.url = f"{self.scheme}://{match.group(1)}"
        return self

    def rss_kib(self):
        return rss_kib(self.process.pid)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    """nginx with one worker and its own configuration in a temporary directory:
    the static root under `/static/`, `/a/b/c.txt` answered with the hello body, and
    HTTPS when a certificate is given."""

    def __init__(self, static_root, tls=None, wrapper=()):
        self.static_root = static_root
        self.tls = tls
        self.wrapper = list(wrapper)
        self.dir = None
        self.process = None
        self.url = None

    def __enter__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="poco-bench-nginx-"))
        port = free_port()
        listen = f"127.0.0.1:{port} ssl" if self.tls else f"127.0.0.1:{port}"
        tls_lines = ""
        if self.tls:
            cert, key = self.tls
            tls_lines = (
                f"ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.3;\n"
                "        ssl_session_cache off; ssl_session_tickets off;\n"
            )
        (self.dir / "nginx.conf").write_text(
            f"""worker_processes 1;
daemon off;
master_process off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 20000; }}
worker_rlimit_nofile 40000;
http {{
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    access_log off;
    client_body_temp_path {self.dir};
    proxy_temp_path {self.dir};
    fastcgi_temp_path {self.dir};
    uwsgi_temp_path {self.dir};
    scgi_temp_path {self.dir};
    types {{ text/plain txt; application/octet-stream bin; }}
    server {{
        listen {listen};
        {tls_lines}
        location /static/ {{ alias {self.static_root}/; }}
        location = {HELLO_PATH} {{ default_type text/plain; return 200 "{HELLO_BODY}"; }}
    }}
}}
"""
        )
        command = pinned([*self.wrapper, "nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")], SERVER_CORES)
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        # Bounded: valgrind takes seconds to start.
        for _ in range(600):
            probe = subprocess.run(["curl", "-sk", "-o", "/dev/null", self.url + HELLO_PATH])
            if probe.returncode == 0:
                return self
            if self.process.poll() is not None:
                sys.exit(f"nginx did not start: {self.process.stderr.read()}")
            time.sleep(0.05)
        sys.exit("nginx did not answer")

    def rss_kib(self):
        return rss_kib(self.process.pid)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def to_us(value):
    """wrk's latency figures (`812.00us`, `3.17ms`, `1.02s`, `1.50m`) in microseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        sys.exit(f"cannot read the latency {value!r} from wrk")
    number, unit = match.groups()
    return float(number) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]


def wrk(url, connections, seconds, headers=(), warm=True):
    """One wrk run (after a second of warm-up): requests/s, p50 and p99 in
    microseconds, transfer MB/s. Exits on any error."""
    extra = [arg for header in headers for arg in ("-H", header)]
    if warm:
        command = pinned(["wrk", "-t1", f"-c{connections}", "-d1s", *extra, url], LOAD_CORES)
        subprocess.run(command, capture_output=True, check=True)
    command = pinned(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url], LOAD_CORES)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    closing = any("close" in header.lower() for header in headers)
    # With `Connection: close` the server ends each connection: wrk counts those as
    # read errors when the close races its next write; the count is not a failure.
    if (errors and any(int(n) for n in errors.groups()[:1 if closing else 4])) or bad:
        sys.exit(f"wrk saw errors against {url}:\n{out}")
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    scale = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "requests_per_sec": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        # The "Latency Distribution" lines; a bare "50%" would also match the
        # "+/- Stdev" column of the thread stats (e.g. "90.50%").
        "p50_us": to_us(re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1)),
        "p99_us": to_us(re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1)),
        "mb_per_sec": float(transfer.group(1)) * scale[transfer.group(2)] if transfer else 0.0,
    }


def h2load(url, connections, seconds):
    """One h2load run over h2c, 100 streams per connection: requests/s and p99 (from
    its per-request log)."""
    with tempfile.NamedTemporaryFile(prefix="poco-bench-h2load-", suffix=".log") as log:
        command = pinned(
            ["h2load", "-t1", f"-c{connections}", "-m100", f"-D{seconds}", "--warm-up-time=1",
             f"--log-file={log.name}", url],
            LOAD_CORES,
        )
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
        if not done or int(done.group(3)) or int(done.group(4)):
            sys.exit(f"h2load saw failures against {url}:\n{out}")
        latencies = sorted(int(line.split("\t")[2]) for line in Path(log.name).read_text().splitlines() if line)
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0
    return {"requests_per_sec": rate, "p99_us": float(p99)}


def curl_mb_per_sec(url, expected):
    """Downloads `url` once; MB/s (10^6 bytes)."""
    command = pinned(["curl", "-sk", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url], LOAD_CORES)
    speed, size = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    if int(size) != expected:
        sys.exit(f"{url} gave {size} bytes, not {expected}")
    return float(speed) / 1e6


def rotated(names, run):
    """The server order of one run: each server goes first in turn."""
    shift = run % len(names)
    return names[shift:] + names[:shift]


def say(text):
    print(text, flush=True)


def app_loads(args, samples):
    for run in range(args.runs):
        for load, connections in (("low", args.low), ("high", args.high)):
            for name in rotated(APP_SERVERS, run):
                with Server(name) as server:
                    result = wrk(server.url + HELLO_PATH, connections, args.duration)
                samples["http1"][load][name].append(result)
                say(f"run {run + 1}/{args.runs} http1 {load:>4} ({connections:>3} conns) {name:>5}: "
                    f"{result['requests_per_sec']:>9.0f} req/s  p50 {result['p50_us']:>7.0f} us  p99 {result['p99_us']:>7.0f} us")


def static_loads(args, samples, static_root):
    def start(name):
        if name == "nginx":
            return Nginx(static_root)
        return Server(name, env={"BENCH_STATIC_ROOT": str(static_root)})

    for run in range(args.runs):
        for size in ("1k", "100k"):
            for name in rotated(STATIC_SERVERS, run):
                with start(name) as server:
                    result = wrk(f"{server.url}/static/{size}.bin", args.static_conns, args.duration)
                samples["static"][size][name].append(result)
                say(f"run {run + 1}/{args.runs} static {size:>4} {name:>5}: {result['requests_per_sec']:>9.0f} req/s  "
                    f"p99 {result['p99_us']:>7.0f} us  {result['mb_per_sec']:>7.0f} MB/s")
    for run in range(min(args.runs, 3)):
        for name in rotated(STATIC_SERVERS, run):
            with start(name) as server:
                speed = curl_mb_per_sec(f"{server.url}/static/1g.bin", STATIC_FILES["1g"])
            samples["static"]["1g"][name].append({"mb_per_sec": speed})
            say(f"run {run + 1} static 1 GiB {name:>5}: {speed:>7.0f} MB/s")


def h2_loads(args, samples):
    for run in range(args.runs):
        for name in rotated(APP_SERVERS, run):
            with Server(name) as server:
                result = h2load(server.url + HELLO_PATH, args.h2_conns, args.duration)
            samples["h2"][name].append(result)
            say(f"run {run + 1}/{args.runs} h2 ({args.h2_conns} conns x 100 streams) {name:>5}: "
                f"{result['requests_per_sec']:>9.0f} req/s  p99 {result['p99_us']:>7.0f} us")


def tls_loads(args, samples, static_root, cert, key):
    def start(name):
        if name == "nginx":
            return Nginx(static_root, tls=(cert, key))
        return Server(name, env={"BENCH_TLS_CERT": str(cert), "BENCH_TLS_KEY": str(key)}, scheme="https")

    for run in range(args.runs):
        for name in rotated(TLS_SERVERS, run):
            with start(name) as server:
                alive = wrk(server.url + HELLO_PATH, args.tls_conns, args.duration)
                fresh = wrk(server.url + HELLO_PATH, 16, args.duration, headers=["Connection: close"])
            samples["tls"]["keepalive"][name].append(alive)
            samples["tls"]["handshakes"][name].append(fresh)
            say(f"run {run + 1}/{args.runs} tls {name:>5}: {alive['requests_per_sec']:>9.0f} req/s kept alive, "
                f"{fresh['requests_per_sec']:>7.0f} new TLS 1.3 handshakes/s")


def idle_memory(server, count, mode="idle"):
    """Resident bytes per keep-alive connection: RSS with `count` connections open,
    minus RSS before, over `count`. `idle`: one request answered on each; `in-flight`:
    one request on each that the server holds unanswered while RSS is read."""
    before = server.rss_kib()
    addr = server.url.split("://", 1)[1]
    idle = subprocess.Popen(
        pinned([str(BIN / "bench-idle"), addr, str(count), "3", mode], LOAD_CORES), stdout=subprocess.PIPE, text=True
    )
    line = idle.stdout.readline()
    if not line.startswith("holding"):
        idle.kill()
        sys.exit(f"bench-idle failed against {server.url}: {line!r}")
    time.sleep(0.5)
    during = server.rss_kib()
    idle.wait()
    return (during - before) * 1024 / count


def memory_and_stream(args, samples):
    for run in range(min(args.runs, 3)):
        for name in rotated(APP_SERVERS, run):
            for count in args.idle_counts:
                with Server(name) as server:
                    wrk(server.url + HELLO_PATH, 4, 1, warm=False)
                    samples["memory"][str(count)][name].append(idle_memory(server, count))
                with Server(name) as server:
                    wrk(server.url + HELLO_PATH, 4, 1, warm=False)
                    samples["memory_in_flight"][str(count)][name].append(idle_memory(server, count, "in-flight"))
            with Server(name) as server:
                samples["stream"][name].append(curl_mb_per_sec(server.url + STREAM_PATH, 1 << 30))
            memory = ", ".join(f"{samples['memory'][str(c)][name][-1]:.0f}" for c in args.idle_counts)
            busy = ", ".join(f"{samples['memory_in_flight'][str(c)][name][-1]:.0f}" for c in args.idle_counts)
            say(f"run {run + 1} {name:>5}: B/idle conn at {args.idle} = {memory}; with a request in flight = {busy}; "
                f"{samples['stream'][name][-1]:.0f} MB/s streamed")


def scaling(args, samples):
    """Requests/s of ours and hyper with 1 worker on one core and 2 workers on both
    (wrk then shares a core with the server: see BENCHMARKS.md)."""
    every = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    for run in range(args.runs):
        for threads, core_list in ((1, SERVER_CORES), (2, every)):
            for name in rotated(["ours", "hyper"], run):
                with Server(name, threads=threads, cores=core_list) as server:
                    result = wrk(server.url + HELLO_PATH, args.high, args.duration)
                samples["scaling"][str(threads)][name].append(result)
                say(f"run {run + 1}/{args.runs} scaling {threads} worker(s) {name:>5}: {result['requests_per_sec']:>9.0f} req/s")


def callgrind(args):
    """Instructions per request of each server under callgrind (bench/callgrind)."""
    counts = {}
    jobs = [
        ("http1", [f"bench-{name}" for name in APP_SERVERS], {"PATH_ASKED": HELLO_PATH}),
    ]
    for label, servers, env in jobs:
        command = [str(ROOT / "bench" / "callgrind"), *servers]
        env = dict(os.environ, NO_BUILD="1", DURATION=str(args.callgrind_secs), PORT=str(free_port()), **env)
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
        for match in re.finditer(r"bench-(\w+): (\d+) instructions per request", out):
            counts.setdefault(label, {})[match.group(1)] = int(match.group(2))
    return counts


def static_callgrind(args, static_root):
    """Instructions per request serving the 1 KiB file: ours under callgrind.

    Valgrind 3.19 (Debian's) does not implement `openat2`, so under it the static
    handler resolves paths itself and, since such opens are never cached, every
    request takes the uncached path: this counts that path, not a content-cache hit
    (which natively is every repeated request; see BENCHMARKS.md)."""
    command = [str(ROOT / "bench" / "callgrind"), "bench-ours"]
    env = dict(os.environ, NO_BUILD="1", DURATION=str(args.callgrind_secs), PATH_ASKED="/static/1k.bin",
               PORT=str(free_port()),
               BENCH_STATIC_ROOT=str(static_root))
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    match = re.search(r"(\d+) instructions per request", out)
    return int(match.group(1)) if match else None


def nginx_callgrind(args, static_root, path):
    """Instructions per request of nginx (one process, no master) answering `path`
    under callgrind, counted over the load alone, as bench/callgrind counts ours."""
    out = Path(tempfile.mkdtemp(prefix="poco-bench-cg-"))
    try:
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/nginx.cg"]
        with Nginx(static_root, wrapper=wrapper) as nginx:
            pid = str(nginx.process.pid)
            subprocess.run(["callgrind_control", "-z", pid], capture_output=True)
            answered = wrk(nginx.url + path, 8, args.callgrind_secs, warm=False)["requests"]
            subprocess.run(["callgrind_control", "-d", pid], capture_output=True)
        dumps = sorted(out.glob("nginx.cg.*"))
        if not dumps or not answered:
            return None
        totals = re.search(r"^(?:summary|totals): (\d+)", dumps[0].read_text(), re.MULTILINE)
        return int(totals.group(1)) // answered if totals else None
    finally:
        shutil.rmtree(out, ignore_errors=True)


def make_static_root():
    root = Path(tempfile.mkdtemp(prefix="poco-bench-static-"))
    block = bytes(range(256)) * 4096  # 1 MiB
    for name, size in STATIC_FILES.items():
        with open(root / f"{name}.bin", "wb") as out:
            left = size
            while left:
                out.write(block[: min(left, len(block))])
                left -= min(left, len(block))
    return root


def make_certificate(directory):
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def by_server(names):
    return {name: [] for name in names}


def empty_samples(args):
    return {
        "http1": {load: by_server(APP_SERVERS) for load in ("low", "high")},
        "static": {size: by_server(STATIC_SERVERS) for size in STATIC_FILES},
        "h2": by_server(APP_SERVERS),
        "tls": {kind: by_server(TLS_SERVERS) for kind in ("keepalive", "handshakes")},
        "memory": {str(count): by_server(APP_SERVERS) for count in args.idle_counts},
        "memory_in_flight": {str(count): by_server(APP_SERVERS) for count in args.idle_counts},
        "stream": by_server(APP_SERVERS),
        "scaling": {threads: by_server(["ours", "hyper"]) for threads in ("1", "2")},
    }


def figure(sample, key):
    return sample[key] if isinstance(sample, dict) else sample


def paired(samples, other, key):
    """Ours / other within each run, whose servers ran back to back: a burst of load
    on the shared machine then skews the runs it hits for all servers alike."""
    return [figure(a, key) / figure(b, key) for a, b in zip(samples["ours"], samples[other]) if figure(b, key)]


def ratio(samples, other, key):
    runs = paired(samples, other, key)
    return {"median": statistics.median(runs), "low": min(runs), "high": max(runs)} if runs else None


def median_of(samples, key):
    return {name: statistics.median(figure(s, key) for s in runs) for name, runs in samples.items() if runs}


def summarize(samples):
    rps, p99, mbs = "requests_per_sec", "p99_us", "mb_per_sec"
    table = {
        "http1_low_rps": median_of(samples["http1"]["low"], rps),
        "http1_low_p99_us": median_of(samples["http1"]["low"], p99),
        "http1_high_rps": median_of(samples["http1"]["high"], rps),
        "http1_high_p99_us": median_of(samples["http1"]["high"], p99),
        "h2_rps": median_of(samples["h2"], rps),
        "h2_p99_us": median_of(samples["h2"], p99),
        "static_1k_rps": median_of(samples["static"]["1k"], rps),
        "static_1k_p99_us": median_of(samples["static"]["1k"], p99),
        "static_100k_rps": median_of(samples["static"]["100k"], rps),
        "static_1g_mb_per_sec": median_of(samples["static"]["1g"], mbs),
        "tls_keepalive_rps": median_of(samples["tls"]["keepalive"], rps),
        "tls_handshakes_per_sec": median_of(samples["tls"]["handshakes"], rps),
        "stream_mb_per_sec": median_of(samples["stream"], None),
        "scaling_1_worker_rps": median_of(samples["scaling"]["1"], rps),
        "scaling_2_workers_rps": median_of(samples["scaling"]["2"], rps),
    }
    for count, runs in samples["memory"].items():
        idle = table[f"memory_bytes_per_conn_{count}"] = median_of(runs, None)
        busy = table[f"memory_bytes_per_busy_conn_{count}"] = median_of(samples["memory_in_flight"][count], None)
        # What a request in flight adds to its connection.
        table[f"memory_bytes_per_request_{count}"] = {name: busy[name] - idle[name] for name in busy if name in idle}
    ratios = {
        "ratio_vs_hyper": ratio(samples["http1"]["high"], "hyper", rps),
        "ratio_vs_actix": ratio(samples["http1"]["high"], "actix", rps),
        "ratio_vs_axum": ratio(samples["http1"]["high"], "axum", rps),
        "p99_vs_actix": ratio(samples["http1"]["high"], "actix", p99),
        "static_small_vs_nginx": ratio(samples["static"]["1k"], "nginx", rps),
        "static_100k_vs_nginx": ratio(samples["static"]["100k"], "nginx", rps),
        "static_large_vs_nginx": ratio(samples["static"]["1g"], "nginx", mbs),
        "h2_vs_hyper": ratio(samples["h2"], "hyper", rps),
        "h2_vs_actix": ratio(samples["h2"], "actix", rps),
        "tls_keepalive_vs_hyper": ratio(samples["tls"]["keepalive"], "hyper", rps),
        "tls_keepalive_vs_nginx": ratio(samples["tls"]["keepalive"], "nginx", rps),
        "tls_handshakes_vs_hyper": ratio(samples["tls"]["handshakes"], "hyper", rps),
        "tls_handshakes_vs_nginx": ratio(samples["tls"]["handshakes"], "nginx", rps),
        "stream_vs_hyper": ratio(samples["stream"], "hyper", None),
    }
    return table, {name: value for name, value in ratios.items() if value}


def print_table(args, table, ratios, instructions):
    names = ["ours", "hyper", "axum", "actix", "nginx"]
    say("")
    say(f"medians of {args.runs} runs of {args.duration} s; server cores {SERVER_CORES}, load cores {LOAD_CORES}")
    say(f"{'':<34}" + "".join(f"{name:>11}" for name in names))
    rows = [(key, table[key]) for key in table]
    for label, counts in instructions.items():
        rows.append((f"instructions/request ({label})", counts))
    for key, values in rows:
        cells = "".join(f"{values[name]:>11.0f}" if name in values else f"{'-':>11}" for name in names)
        say(f"{key:<34}{cells}")
    say("")
    for name, value in ratios.items():
        say(f"{name}: {value['median']:.3f}  (runs {value['low']:.3f} to {value['high']:.3f})")


def bar_chart(table, ratios, args):
    """An SVG of the medians, one panel per figure."""
    colors = {"ours": "#d9480f", "hyper": "#1c7ed6", "axum": "#2f9e44", "actix": "#7048e8", "nginx": "#868e96"}
    panels = [
        (f"HTTP/1.1 req/s, {args.high} conns", table["http1_high_rps"]),
        (f"HTTP/1.1 p99 us, {args.high} conns", table["http1_high_p99_us"]),
        ("HTTP/2 req/s (h2load)", table["h2_rps"]),
        ("static 1 KiB req/s", table["static_1k_rps"]),
        ("static 100 KiB req/s", table["static_100k_rps"]),
        ("static 1 GiB MB/s", table["static_1g_mb_per_sec"]),
        ("TLS keep-alive req/s", table["tls_keepalive_rps"]),
        ("TLS 1.3 handshakes/s", table["tls_handshakes_per_sec"]),
    ]
    width, height, top, bar_area = 230, 260, 40, 170
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * 4}" height="{(height + 10) * 2 + 30}" '
        'font-family="sans-serif" font-size="12">',
    ]
    summary = "; ".join(f"{key} {ratios[key]['median']:.2f}" for key in
                        ("ratio_vs_hyper", "ratio_vs_actix", "static_small_vs_nginx", "static_large_vs_nginx",
                         "h2_vs_hyper") if key in ratios)
    parts.append(f'<text x="8" y="{(height + 10) * 2 + 22}">{summary}; medians of {args.runs} runs</text>')
    for index, (title, values) in enumerate(panels):
        x0, y0 = (index % 4) * width, (index // 4) * (height + 10)
        peak = max(values.values(), default=0) or 1
        parts.append(f'<text x="{x0 + 10}" y="{y0 + 20}" font-weight="bold">{title}</text>')
        for slot, (name, v) in enumerate(values.items()):
            bar = bar_area * v / peak
            x = x0 + 10 + slot * 44
            y = y0 + top + bar_area - bar
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="36" height="{bar:.1f}" fill="{colors[name]}"/>')
            parts.append(f'<text x="{x}" y="{y - 4:.1f}" font-size="9">{v:.0f}</text>')
            parts.append(f'<text x="{x}" y="{y0 + top + bar_area + 16}" font-size="11">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    args = parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "poco-bench", "--bins"], cwd=ROOT, check=True)
    scratch = Path(tempfile.mkdtemp(prefix="poco-bench-"))
    static_root = make_static_root()
    try:
        cert, key = make_certificate(scratch)
        samples = empty_samples(args)
        app_loads(args, samples)
        static_loads(args, samples, static_root)
        h2_loads(args, samples)
        tls_loads(args, samples, static_root, cert, key)
        memory_and_stream(args, samples)
        scaling(args, samples)
        say("counting instructions under callgrind")
        instructions = callgrind(args)
        static_counts = {"ours": static_callgrind(args, static_root),
                         "nginx": nginx_callgrind(args, static_root, "/static/1k.bin")}
        instructions["static 1 KiB, uncached path"] = {k: v for k, v in static_counts.items() if v}
        hello_nginx = nginx_callgrind(args, static_root, HELLO_PATH)
        if hello_nginx:
            instructions.setdefault("http1", {})["nginx"] = hello_nginx
    finally:
        shutil.rmtree(static_root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    table, ratios = summarize(samples)
    print_table(args, table, ratios, instructions)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("runs", "duration", "low", "high", "static_conns", "h2_conns",
                                              "tls_conns", "idle", "quick")}
    settings.update(server_cores=SERVER_CORES, load_cores=LOAD_CORES)
    results = {"settings": settings, "median": table, "ratios": ratios, "instructions_per_request": instructions,
               "samples": samples}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "chart.svg").write_text(bar_chart(table, ratios, args))
    say(f"wrote {out / 'results.json'} and {out / 'chart.svg'}")
    for name in ("ratio_vs_hyper", "ratio_vs_actix", "static_small_vs_nginx", "static_large_vs_nginx", "h2_vs_hyper"):
        say(f"{name}: {ratios[name]['median']:.2f}" if name in ratios else f"{name}: nan")


if __name__ == "__main__":
    main()
