#!/usr/bin/env python3
"""An HTTP server on the loopback address for the fetch-data test: serves the files under
ROOT, except that a path named by --truncate is cut after half its bytes (the full length
announced, then the connection closed) and a path named by --fail answers 500.
Usage: fixture_server.py ROOT PORTFILE [--truncate PATH]... [--fail PATH]...
Writes the port it listens on to PORTFILE once it is ready."""
import http.server, os, sys

root, portfile = sys.argv[1], sys.argv[2]
truncate, fail, args = set(), set(), sys.argv[3:]
for flag, value in zip(args[::2], args[1::2]):
    (truncate if flag == "--truncate" else fail).add(value)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path in fail:
            self.send_error(500, "fixture: failing on purpose")
            return
        local = os.path.join(root, path.lstrip("/"))
        if not os.path.isfile(local):
            self.send_error(404)
            return
        data = open(local, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if path in truncate else data)
        self.wfile.flush()
        if path in truncate:
            self.close_connection = True

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
