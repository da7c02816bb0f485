#!/usr/bin/env python3
"""Drive a program through a pseudo-terminal, as a person at a keyboard would.
Usage: pty_session.py PROGRAM [ARGS...] < keys
Each line of stdin is one burst of keys (Python escapes: \\t Tab, \\x03 Ctrl-C, \\x04
Ctrl-D, \\r Enter); the program's output is read until it is quiet before the next
burst. Prints everything the terminal showed, then "<exit N>"."""
import os, pty, select, sys, time

def read_until_quiet(fd, quiet=0.4, limit=20.0):
    out, start, last = b"", time.time(), time.time()
    while time.time() - start < limit:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
            last = time.time()
        elif out and time.time() - last > quiet:
            break
    return out, False

pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
seen, ended = read_until_quiet(fd, limit=30.0)
for line in sys.stdin.read().splitlines():
    if ended:
        break
    os.write(fd, line.encode().decode("unicode_escape").encode("latin-1"))
    chunk, ended = read_until_quiet(fd)
    seen += chunk
_, status = os.waitpid(pid, 0) if ended else (None, None)
if not ended:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace").replace("\r\n", "\n"))
print("<exit %s>" % (os.waitstatus_to_exitcode(status) if status is not None else "killed"))
