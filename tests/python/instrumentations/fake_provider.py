"""A fake OpenAI + Anthropic API on loopback for the instrumentation tests.

It answers the real SDKs' requests with fixed usage so the tests can compare
what tokenmeter stores with hand-computed values:

  POST /v1/chat/completions  (OpenAI)   scenario "openai":   1200 prompt tokens of which
                                         1000 cached, 300 completion tokens
  POST /v1/messages          (Anthropic) scenario "anthropic": 500 uncached input, 400 cache
                                         reads, 100 cache writes, 500 output
                                         scenario "anthropic-bigcache" (header
                                         x-fake-scenario): 50 input, 12000 cache reads, 20 output

Streaming follows each API's SSE format; OpenAI sends the usage chunk only when
the request asks for it (stream_options.include_usage), as the real API does.
The service tier of the answer is the request's (default "default" / "standard").

Run: python fake_provider.py [PORT]  -> prints "listening HOST:PORT" and serves until killed.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_MODEL = "gpt-4o-2024-08-06"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"

_counter = 0
_lock = threading.Lock()


def next_id():
    global _counter
    with _lock:
        _counter += 1
        return _counter


def openai_usage():
    return {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def anthropic_usage(scenario):
    if scenario == "anthropic-bigcache":
        return {"input_tokens": 50, "cache_read_input_tokens": 12000, "cache_creation_input_tokens": 0,
                "output_tokens": 20}
    return {"input_tokens": 500, "cache_read_input_tokens": 400, "cache_creation_input_tokens": 100,
            "output_tokens": 500}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _sse(self, events):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for name, data in events:
            chunk = ""
            if name:
                chunk += "event: " + name + "\n"
            chunk += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
            self.wfile.write(chunk.encode())
            self.wfile.flush()
        self.close_connection = True

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            return self.openai_chat(req)
        if path.endswith("/messages"):
            return self.anthropic_messages(req, self.headers.get("x-fake-scenario", "anthropic"))
        self._json(404, {"error": {"message": "no such route " + path}})

    def openai_chat(self, req):
        cid = "chatcmpl-fake%06d" % next_id()
        tier = req.get("service_tier") or "default"
        if tier == "auto":
            tier = "default"
        created = 1764324930
        msg = "Hello from the fake provider."
        if not req.get("stream"):
            return self._json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": OPENAI_MODEL,
                "service_tier": tier, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": msg},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": openai_usage(),
            })
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": OPENAI_MODEL,
                "service_tier": tier, "system_fingerprint": "fp_fake"}
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        events = []
        events.append((None, dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                  "finish_reason": None}], **({"usage": None} if include_usage else {}))))
        for word in msg.split(" "):
            events.append((None, dict(base, choices=[{"index": 0, "delta": {"content": word + " "},
                                                      "finish_reason": None}], **({"usage": None} if include_usage else {}))))
        events.append((None, dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                  **({"usage": None} if include_usage else {}))))
        if include_usage:
            events.append((None, dict(base, choices=[], usage=openai_usage())))
        events.append((None, "[DONE]"))
        self._sse(events)

    def anthropic_messages(self, req, scenario):
        mid = "msg_fake%06d" % next_id()
        usage = anthropic_usage(scenario)
        tier = req.get("service_tier") or "standard"
        if tier == "auto":
            tier = "standard"
        usage = dict(usage, service_tier=tier)
        text = "Hello from the fake provider."
        if not req.get("stream"):
            return self._json(200, {
                "id": mid, "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": usage,
            })
        start_usage = dict(usage, output_tokens=1)
        events = [
            ("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": text}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(events)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    print("listening %s:%d" % srv.server_address, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
