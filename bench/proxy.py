"""The reverse proxy comparison behind bench/proxy: poco-httpd vs nginx, with the
floor of any proxy built on hyper beside them.

The proxies run with one worker (poco-httpd: TOKIO_WORKER_THREADS=1; nginx:
worker_processes 1) pinned to the same core, in front of the same upstream —
bench-hyper from bench/servers, which answers `GET /a/b/c.txt` with a small text
and `/stream` with 1 GiB — over keep-alive upstream connections (nginx:
`keepalive 64` in its upstream block, HTTP/1.1, `Connection ""`). The upstream
and the load generator share the other core(s). Alternating which proxy goes
first from run to run, it measures:

* small responses: wrk over keep-alive at CONNS connections (requests/s, p50, p99);
* one 1 GiB download through the proxy with curl (MB/s).

The third contestant, `bare`, is bench-hyper-proxy: hyper's server in front of
hyper's client connections and nothing else (no header work, pool, timeouts or
failure handling; not a usable proxy) — what a proxy on hyper costs at the least.

Prints medians and the ratios to nginx for each, and ends with
`floor_ratio_vs_nginx: X.XX` (bare) and `ratio_vs_nginx: X.XX` (ours; small
responses, requests/s). Standard library only.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
HELLO_PATH = "/a/b/c.txt"
STREAM_PATH = "/stream"
PROXIES = ["ours", "nginx", "bare"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measurements per proxy (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--conns", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration = 1, 3
    return args


def cores():
    """(proxy core, upstream and load cores) as taskset lists."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return str(available[0]), ",".join(str(c) for c in available[1:])


PROXY_CORE, OTHER_CORES = cores()


def pinned(command, core_list):
    return ["taskset", "-c", core_list, *command] if core_list else command


def build():
    subprocess.run(["cargo", "build", "--release", "--bin", "poco-httpd", "-p", "poco-httpd"], cwd=ROOT, check=True)
    subprocess.run(
        ["cargo", "build", "--release", "-p", "poco-bench", "--bin", "bench-hyper", "--bin", "bench-hyper-proxy"],
        cwd=ROOT,
        check=True,
    )


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port):
    import socket

    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")


class Upstream:
    """bench-hyper with one worker on the non-proxy cores."""

    def __enter__(self):
        env = dict(os.environ, BENCH_THREADS="1")
        command = pinned([str(BIN / "bench-hyper"), "127.0.0.1:0"], OTHER_CORES)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        match = re.search(r"http://(\S+)", line)
        if not match:
            self.process.kill()
            sys.exit(f"bench-hyper did not start: {line!r}")
        self.addr = match.group(1)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


class Proxy:
    """One proxy on a free port in front of `upstream`, in a temp dir of its own."""

    def __init__(self, name, upstream):
        self.name, self.upstream = name, upstream

    def __enter__(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-proxy-{self.name}-"))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        if self.name == "ours":
            command, env = self.ours(port)
        elif self.name == "bare":
            command = [str(BIN / "bench-hyper-proxy"), f"127.0.0.1:{port}", self.upstream]
            env = dict(os.environ, BENCH_THREADS="1")
        else:
            command, env = self.nginx(port)
        self.process = subprocess.Popen(
            pinned(command, PROXY_CORE), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(port)
        return self

    def ours(self, port):
        config = self.dir / "poco-httpd.toml"
        config.write_text(
            f'listen = "127.0.0.1:{port}"\n'
            "[status]\nenabled = false\n"
            "[compression]\nenabled = false\n"
            "[limits]\nmax_body_size = 2147483648\n"
            '[[location]]\npath = "/"\n'
            f'proxy = {{ to = ["{self.upstream}"] }}\n'
        )
        env = dict(os.environ, TOKIO_WORKER_THREADS="1", RUST_LOG="error")
        return [str(BIN / "poco-httpd"), "--config", str(config)], env

    def nginx(self, port):
        config = self.dir / "nginx.conf"
        config.write_text(
            f"""
worker_processes 1;
daemon off;
master_process off;
error_log {self.dir}/error.log error;
pid {self.dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    upstream app {{
        server {self.upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"""
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-c", str(config), "-p", str(self.dir)], dict(os.environ)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk(url, connections, seconds):
    command = pinned(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url + HELLO_PATH], OTHER_CORES
    )
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if (errors and any(int(n) for n in errors.groups())) or bad:
        sys.exit(f"wrk saw errors against {url}:\n{out}")
    to_us = lambda v: float(v[:-2]) if v.endswith("us") else float(v[:-2]) * 1e3 if v.endswith("ms") else float(v[:-1]) * 1e6
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_us": to_us(re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1)),
        "p99_us": to_us(re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1)),
    }


def download(url):
    command = pinned(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url + STREAM_PATH], OTHER_CORES
    )
    speed, size = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    if int(size) != 1 << 30:
        sys.exit(f"{url} streamed {size} bytes, not 1 GiB")
    return float(speed) / 1e6


def main():
    args = parse_args()
    build()
    samples = {name: {"small": [], "stream": []} for name in PROXIES}
    with Upstream() as upstream:
        for run in range(args.runs):
            order = PROXIES[run % len(PROXIES):] + PROXIES[:run % len(PROXIES)]
            for name in order:
                with Proxy(name, upstream.addr) as proxy:
                    wrk(proxy.url, args.conns, 1)  # warm-up: pools filled
                    result = wrk(proxy.url, args.conns, args.duration)
                    mb = download(proxy.url)
                samples[name]["small"].append(result)
                samples[name]["stream"].append(mb)
                print(
                    f"run {run + 1}/{args.runs} {name:>5}: {result['rps']:>9.0f} req/s  "
                    f"p50 {result['p50_us']:>7.0f} us  p99 {result['p99_us']:>7.0f} us  "
                    f"1 GiB download {mb:>7.0f} MB/s",
                    flush=True,
                )
    med = lambda name, key, field=None: statistics.median(
        [s[field] if field else s for s in samples[name][key]]
    )
    print(f"\nmedians of {args.runs} runs, proxy pinned to core {PROXY_CORE}, {args.conns} connections:")
    print(f"{'':>6} {'req/s':>9} {'p50 us':>8} {'p99 us':>8} {'MB/s':>7}")
    for name in PROXIES:
        print(
            f"{name:>6} {med(name, 'small', 'rps'):>9.0f} {med(name, 'small', 'p50_us'):>8.0f} "
            f"{med(name, 'small', 'p99_us'):>8.0f} {med(name, 'stream'):>7.0f}"
        )
    def vs_nginx(name, key, field=None):
        pairs = zip(samples[name][key], samples["nginx"][key])
        return statistics.median((o[field] / n[field]) if field else (o / n) for o, n in pairs)

    print(f"bare_download_ratio_vs_nginx: {vs_nginx('bare', 'stream'):.2f}")
    print(f"download_ratio_vs_nginx: {vs_nginx('ours', 'stream'):.2f}")
    print(f"floor_ratio_vs_nginx: {vs_nginx('bare', 'small', 'rps'):.2f}")
    print(f"ratio_vs_nginx: {vs_nginx('ours', 'small', 'rps'):.2f}")


if __name__ == "__main__":
    main()
