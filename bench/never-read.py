#!/usr/bin/env python3
"""A client that asks for PATH and then never reads: over h2c (with a flow-control
window so large that only the socket holds the server back) or HTTP/1.1. Prints how
long the server kept the connection open (the server's side of it, as the same
host's /proc/net/tcp shows it). Needs Python's `h2`.

usage: never-read.py h2c|h2tls|h1 HOST PORT PATH SECONDS (h2tls: HTTP/2 over TLS, the
certificate not checked)
Prints one line: the second at which the server's side closed, or "open".
"""
import socket
import sys
import time

mode, host, port, path, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
sock = socket.create_connection((host, port))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
local = sock.getsockname()[1]
if mode == "h2tls":
    import ssl
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(sock, server_hostname=host)
if mode.startswith("h2"):
    import h2.config, h2.connection, h2.settings
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(client=True, initial_values={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    conn.initiate_connection()
    conn.increment_flow_control_window(2**31 - 1 - 65535)
    conn.send_headers(1, [(":method", "GET"), (":scheme", "http"),
                          (":authority", f"{host}:{port}"), (":path", path)], end_stream=True)
    sock.sendall(conn.data_to_send())
else:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
start = time.monotonic()
# Never read. The server's FIN would queue behind the bytes this client never takes,
# so watch the server's side of the connection instead (same host): /proc/net/tcp
# shows it leave ESTABLISHED once the server closed its socket.


def server_side_state():
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            mine, theirs = fields[1].split(":")[1], fields[2].split(":")[1]
            if int(mine, 16) == port and int(theirs, 16) == local:
                return fields[3]
    return None


while time.monotonic() - start < seconds:
    if server_side_state() != "01":  # 01 = ESTABLISHED
        print(f"closed at {time.monotonic() - start:.0f} s", flush=True)
        sys.exit(0)
    time.sleep(0.5)
print("open", flush=True)
