#!/usr/bin/env python3
"""Init time of the Lambda bootstrap: process start until its first `GET .../invocation/next`
on a stand-in Lambda Runtime API (loopback), which is where Lambda's init phase ends.

    python3 benches/lambda_init.py target/lambda/bootstrap/bootstrap [runs]

Each function kind is started `runs` times (default 20) with the environment Lambda gives it
(region, credentials, TSMIGRATE_FUNCTION); prints min / median / max in ms. The process is
killed once it asks for work, so no invocation runs and nothing leaves this machine.
"""
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

FUNCTIONS = ["precheck", "copy-chunk", "binlog-batch", "start-migration"]


class Api(http.server.BaseHTTPRequestHandler):
    asked = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith("/runtime/invocation/next"):
            Api.asked.set()
            time.sleep(5)  # the process is killed meanwhile
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"127.0.0.1:{server.server_address[1]}"
    size = os.path.getsize(binary)
    print(f"bootstrap: {size / 1e6:.1f} MB ({binary})")
    print(f"{'function':<16} {'min ms':>8} {'median':>8} {'max':>8}")
    for function in FUNCTIONS:
        times = []
        for _ in range(runs):
            env = {
                "PATH": "/usr/bin:/bin",
                "AWS_LAMBDA_RUNTIME_API": api,
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "example",
                "AWS_LAMBDA_FUNCTION_NAME": f"tsmigrate-{function}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "TSMIGRATE_FUNCTION": function,
                "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:tsmigrate",
            }
            Api.asked.clear()
            start = time.perf_counter()
            proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            ok = Api.asked.wait(10)
            elapsed = (time.perf_counter() - start) * 1000
            proc.kill()
            proc.wait()
            if not ok:
                sys.exit(f"{function}: the bootstrap never asked for an invocation")
            times.append(elapsed)
        print(f"{function:<16} {min(times):>8.1f} {statistics.median(times):>8.1f} "
              f"{max(times):>8.1f}")
    server.shutdown()


if __name__ == "__main__":
    main()
