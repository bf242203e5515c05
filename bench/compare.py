"""The load comparison behind bench/compare: poco-httpd vs bare hyper vs axum.

Builds the three servers of bench/servers in release mode, then, alternating the
order of the servers from run to run so that drift on a shared machine hits all
three alike:

* drives `GET /a/b/c.txt` with wrk over keep-alive at a low and a high connection
  count (requests/s, p50 and p99 latency);
* opens many idle keep-alive connections with bench-idle and reads the server's
  resident memory per connection;
* downloads the 1 GiB `/stream` response with curl (MB/s).

Server and load generator are pinned to different cores. Prints medians and
ratios (each the median of the per-run ratios, with the lowest and highest of
those), writes results.json and chart.svg, and ends with the line
`ratio_vs_hyper: X.XX` (ours / hyper requests/s, the median of the runs at the
high count).
Standard library only.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

SERVERS = ["ours", "hyper", "axum"]
ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
HELLO_PATH = "/a/b/c.txt"
STREAM_PATH = "/stream"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measurements per server and load (default 5)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--low", type=int, default=16, help="the low connection count (default 16)")
    parser.add_argument("--high", type=int, default=256, help="the high connection count (default 256)")
    parser.add_argument("--idle", type=int, default=10000, help="idle connections for the memory test (default 10000)")
    parser.add_argument("--quick", action="store_true", help="2 runs of 3 s and 2000 idle connections: a smoke test")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where results.json and chart.svg go")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.idle = 2, 3, 2000
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


class Server:
    """One benchmark server on a free loopback port, for a `with` block."""

    def __init__(self, name):
        self.name = name
        self.process = None
        self.url = None

    def __enter__(self):
        threads = str(len(SERVER_CORES.split(","))) if SERVER_CORES else "1"
        env = dict(os.environ, BENCH_THREADS=threads)
        command = pinned([str(BIN / f"bench-{self.name}"), "127.0.0.1:0"], SERVER_CORES)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        match = re.search(r"http://\S+", line)
        if not match:
            self.process.kill()
            sys.exit(f"bench-{self.name} did not start: {line!r}")
        self.url = match.group(0)
        return self

    def rss_kib(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def to_us(value):
    """wrk's latency figures (`812.00us`, `3.17ms`, `1.02s`, `1.50m`) in microseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        sys.exit(f"cannot read the latency {value!r} from wrk")
    number, unit = match.groups()
    return float(number) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]


def warm_up(url, connections):
    """One second of load before measuring: connections opened, caches warm."""
    command = pinned(["wrk", "-t1", f"-c{connections}", "-d1s", url + HELLO_PATH], LOAD_CORES)
    subprocess.run(command, capture_output=True, check=True)


def wrk(url, connections, seconds):
    """One wrk run: requests/s, p50 and p99 in microseconds. Exits on any error."""
    command = pinned(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url + HELLO_PATH],
        LOAD_CORES,
    )
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if (errors and any(int(n) for n in errors.groups())) or bad:
        sys.exit(f"wrk saw errors against {url}:\n{out}")
    return {
        "requests_per_sec": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        # The "Latency Distribution" lines; a bare "50%" would also match the
        # "+/- Stdev" column of the thread stats (e.g. "90.50%").
        "p50_us": to_us(re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1)),
        "p99_us": to_us(re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1)),
    }


def memory_per_connection(name, count):
    """Resident bytes per idle keep-alive connection: RSS with `count` idle
    connections open, minus RSS after one warm-up request, over `count`."""
    with Server(name) as server:
        warm_up(server.url, 4)
        before = server.rss_kib()
        addr = server.url.removeprefix("http://")
        idle = subprocess.Popen(
            pinned([str(BIN / "bench-idle"), addr, str(count), "5"], LOAD_CORES),
            stdout=subprocess.PIPE,
            text=True,
        )
        line = idle.stdout.readline()
        if not line.startswith("holding"):
            idle.kill()
            sys.exit(f"bench-idle failed against {name}: {line!r}")
        time.sleep(1)
        during = server.rss_kib()
        idle.wait()
    return (during - before) * 1024 / count


def stream_mb_per_sec(name):
    """Downloads the 1 GiB stream once; MB/s (10^6 bytes)."""
    with Server(name) as server:
        command = pinned(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", server.url + STREAM_PATH],
            LOAD_CORES,
        )
        speed, size = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    if int(size) != 1 << 30:
        sys.exit(f"{name} streamed {size} bytes, not 1 GiB")
    return float(speed) / 1e6


def rotated(run):
    """The server order of one run: each server goes first in turn."""
    shift = run % len(SERVERS)
    return SERVERS[shift:] + SERVERS[:shift]


def measure(args):
    samples = {name: {"low": [], "high": [], "memory": [], "stream": []} for name in SERVERS}
    for run in range(args.runs):
        for load, connections in (("low", args.low), ("high", args.high)):
            for name in rotated(run):
                with Server(name) as server:
                    warm_up(server.url, connections)
                    result = wrk(server.url, connections, args.duration)
                samples[name][load].append(result)
                print(
                    f"run {run + 1}/{args.runs} {load:>4} ({connections:>3} conns) {name:>5}: "
                    f"{result['requests_per_sec']:>10.0f} req/s  p50 {result['p50_us']:>8.0f} us  "
                    f"p99 {result['p99_us']:>8.0f} us",
                    flush=True,
                )
    for run in range(min(args.runs, 3)):
        for name in rotated(run):
            samples[name]["memory"].append(memory_per_connection(name, args.idle))
            samples[name]["stream"].append(stream_mb_per_sec(name))
            print(
                f"run {run + 1} {name:>5}: {samples[name]['memory'][-1]:>8.0f} B/idle conn, "
                f"{samples[name]['stream'][-1]:>8.0f} MB/s streamed",
                flush=True,
            )
    return samples


def summarize(samples):
    median = statistics.median
    summary = {}
    for name, s in samples.items():
        summary[name] = {
            load: {key: median(r[key] for r in s[load]) for key in ("requests_per_sec", "p50_us", "p99_us")}
            for load in ("low", "high")
        }
        summary[name]["memory_bytes_per_conn"] = median(s["memory"])
        summary[name]["stream_mb_per_sec"] = median(s["stream"])
    return summary


# Each ratio: ours against `other` at `load`, on `key` of a wrk run (None: the
# sample is the figure itself).
RATIOS = {
    "rps_vs_hyper_high": ("hyper", "high", "requests_per_sec"),
    "rps_vs_hyper_low": ("hyper", "low", "requests_per_sec"),
    "rps_vs_axum_high": ("axum", "high", "requests_per_sec"),
    "rps_vs_axum_low": ("axum", "low", "requests_per_sec"),
    "p99_vs_hyper_high": ("hyper", "high", "p99_us"),
    "p99_vs_hyper_low": ("hyper", "low", "p99_us"),
    "memory_vs_hyper": ("hyper", "memory", None),
    "stream_vs_hyper": ("hyper", "stream", None),
}


def per_run_ratios(samples, other, load, key):
    def pick(run):
        return run[key] if key else run

    return [pick(a) / pick(b) for a, b in zip(samples["ours"][load], samples[other][load])]


def ratios(samples):
    """Ours against each other server: the median over runs of the ratio within each
    run, whose servers ran back to back. A burst of load on the shared machine then
    skews the runs it hits for all servers alike, not the median of one of them."""
    return {name: statistics.median(per_run_ratios(samples, *spec)) for name, spec in RATIOS.items()}


def spreads(samples):
    """The lowest and highest per-run ratio behind each median: how much the shared
    machine moved the runs."""
    runs = {name: per_run_ratios(samples, *spec) for name, spec in RATIOS.items()}
    return {name: [min(values), max(values)] for name, values in runs.items()}


def print_table(args, summary, ratio, spread):
    print()
    print(f"medians of {args.runs} runs of {args.duration} s; server cores {SERVER_CORES}, wrk cores {LOAD_CORES}")
    print(f"{'':>6} {'low req/s':>10} {'p50':>7} {'p99':>7} {'high req/s':>11} {'p50':>7} {'p99':>7} {'B/conn':>8} {'MB/s':>7}")
    for name in SERVERS:
        s = summary[name]
        print(
            f"{name:>6} {s['low']['requests_per_sec']:>10.0f} {s['low']['p50_us']:>5.0f}us {s['low']['p99_us']:>5.0f}us "
            f"{s['high']['requests_per_sec']:>11.0f} {s['high']['p50_us']:>5.0f}us {s['high']['p99_us']:>5.0f}us "
            f"{s['memory_bytes_per_conn']:>8.0f} {s['stream_mb_per_sec']:>7.0f}"
        )
    print()
    for key, value in ratio.items():
        low, high = spread[key]
        print(f"{key}: {value:.3f}  (runs {low:.3f} to {high:.3f})")


def bar_chart(summary, ratio, args):
    """An SVG of the medians: requests/s at both loads, p99 at the high load, memory
    per connection and stream throughput, one panel each."""
    colors = {"ours": "#d9480f", "hyper": "#1c7ed6", "axum": "#2f9e44"}
    panels = [
        (f"req/s, {args.low} conns", lambda s: s["low"]["requests_per_sec"]),
        (f"req/s, {args.high} conns", lambda s: s["high"]["requests_per_sec"]),
        (f"p99 us, {args.high} conns", lambda s: s["high"]["p99_us"]),
        ("bytes per idle conn", lambda s: s["memory_bytes_per_conn"]),
        ("stream MB/s", lambda s: s["stream_mb_per_sec"]),
    ]
    width, height, top, bar_area = 170, 260, 40, 170
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * len(panels)}" height="{height + 30}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="8" y="{height + 22}">ratio_vs_hyper {ratio["rps_vs_hyper_high"]:.2f}; '
        f"medians of {args.runs} runs</text>",
    ]
    for index, (title, value) in enumerate(panels):
        x0 = index * width
        values = [value(summary[name]) for name in SERVERS]
        peak = max(values) or 1
        parts.append(f'<text x="{x0 + 10}" y="20" font-weight="bold">{title}</text>')
        for slot, (name, v) in enumerate(zip(SERVERS, values)):
            bar = bar_area * v / peak
            x = x0 + 15 + slot * 50
            y = top + bar_area - bar
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="40" height="{bar:.1f}" fill="{colors[name]}"/>')
            parts.append(f'<text x="{x}" y="{y - 4:.1f}" font-size="10">{v:.0f}</text>')
            parts.append(f'<text x="{x + 4}" y="{top + bar_area + 16}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    args = parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "poco-bench", "--bins"], cwd=ROOT, check=True)
    samples = measure(args)
    summary = summarize(samples)
    ratio, spread = ratios(samples), spreads(samples)
    print_table(args, summary, ratio, spread)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("runs", "duration", "low", "high", "idle")}
    settings.update(server_cores=SERVER_CORES, load_cores=LOAD_CORES)
    results = {"settings": settings, "median": summary, "ratios": ratio, "ratio_spreads": spread, "samples": samples}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "chart.svg").write_text(bar_chart(summary, ratio, args))
    print(f"wrote {out / 'results.json'} and {out / 'chart.svg'}")
    print(f"ratio_vs_hyper: {ratio['rps_vs_hyper_high']:.2f}")


if __name__ == "__main__":
    main()
