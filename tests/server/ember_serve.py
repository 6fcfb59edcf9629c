"""Starts `ember serve` for the Python server tests: reads the port it prints and waits until it
answers GET /health with 200 (it listens while the model loads). Python 3 stdlib only."""
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def start(binary, args, timeout=60):
    """Runs `binary serve --port 0 *args`; returns (process, port, tail): tail keeps the stderr
    lines after the port's (drained on a thread, so the server never blocks on a full pipe)."""
    proc = subprocess.Popen([binary, "serve", "--port", "0", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    end = time.monotonic() + timeout
    lines = []
    port = None
    while port is None and time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.decode(errors="replace").rstrip())
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", lines[-1])
        if m:
            port = int(m.group(1))
    if port is None:
        proc.kill()
        sys.exit("ember serve did not print its port:\n" + "\n".join(lines))
    tail = []
    threading.Thread(target=lambda: [tail.append(l) for l in iter(proc.stderr.readline, b"")], daemon=True).start()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                if resp.status == 200:
                    return proc, port, tail
        except (urllib.error.HTTPError, OSError):
            pass
        if time.monotonic() > end or proc.poll() is not None:
            proc.kill()
            sys.exit("ember serve never answered /health with 200:\n" + "\n".join(lines + tail))
        time.sleep(0.1)
