"""A webhook receiver for the tests: checks every request with the Standard Webhooks reference
implementation (the `standardwebhooks` package) and writes one JSON line per request to a file.

    python webhook_receiver.py PORT SECRET OUT_FILE [ANSWERS]

ANSWERS is a comma-separated list of how to answer the first requests, one each, in order:
a status code (500, 302, ...), `slow` (stall 30 s before answering), or `big` (200 with a
10 MB body). Every request after them is answered 204 when its signature checks out, 400 if not.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ANSWERS = [a for a in (sys.argv[4] if len(sys.argv) > 4 else "").split(",") if a]
LOCK = threading.Lock()
WEBHOOK = Webhook(SECRET)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            WEBHOOK.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        with LOCK:
            answer = ANSWERS.pop(0) if ANSWERS else ("204" if verified else "400")
            with open(OUT, "a") as out:
                out.write(json.dumps({
                    "webhook_id": headers.get("webhook-id"),
                    "timestamp": headers.get("webhook-timestamp"),
                    "verified": verified,
                    "answer": answer,
                    "path": self.path,
                    "body": json.loads(body) if body else None,
                }) + "\n")
        if answer == "slow":
            time.sleep(30)
            answer = "204"
        if answer == "big":
            self.send_response(200)
            self.send_header("content-length", str(10 * 1024 * 1024))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(160):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self.send_response(int(answer))
        if answer.startswith("3"):
            self.send_header("location", "http://127.0.0.1:9/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
