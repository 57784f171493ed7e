"""`treegrad train --live`: the report page served while the model trains, updated each epoch.

Standard library only. The server listens on 127.0.0.1 alone, at a port the system picks, in
a thread of the training command, and answers only GET requests whose path starts with a
random token (in the URL printed once) and whose Host names that address: anything else is
refused with 403, so another host cannot reach it and another site cannot read it (its
pages would name another Host). The page is the report's (`pagehtml.render`) with `live`
set: its script fetches `state.json` every half second and redraws the learning curve, the
metrics and the layers' summaries from it. Each state is one trace step of the model as it
is after the epoch, taken on a copy of it (the reference engine trains the model's own
nodes). When training ends, the report of the saved model is written beside it and served
as the final state; the server stops with the command, Ctrl-C included.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..files import PAGE, check_output
from .pagehtml import render
from .report import Model, write_page

EVERY = 0.5  # seconds between the page's fetches, and at least between two traced states
MAX_WAIT = 3.0  # seconds the command waits at the end for an open page to fetch the final state


class LiveView:
    """A training run's page, served on 127.0.0.1 while it trains (see the module's docstring)."""

    def __init__(self, prep: Any, report: Path | None, precision: int = 4, *, force: bool = False) -> None:
        from ..run.tasks import class_labels
        from ..spec.build import build_model

        if report is not None:  # now, not after training
            check_output(report, force=force, kind=PAGE, option="--live")
        self.prep, self.report, self.token, self.force = prep, report, secrets.token_urlsafe(24), force
        # A model of its own, to trace with the parameters of each epoch.
        root = build_model(prep.spec, seed=prep.settings.seed, stats=prep.data.stats)
        self.model = Model(root, precision)
        X, y = prep.data.train
        target = y[0] if y else None
        if prep.data.target_stats is not None and target is not None:
            mean, std = prep.data.target_stats
            target = (target - mean) / std  # the loss of training is on the standardised target
        self.sample = ([[float(v) for v in X[0]]], [target]) if len(X) else ([], [])  # X: an array of rows
        self.names = list(root.compiled_graph.param_names)
        self.history: dict[str, list[float]] = {"train": [], "validation": []}
        self.metrics: list[dict[str, str]] = []
        self.params: list[float] | None = None
        self.epoch, self.done, self.traced_at = 0, False, 0.0
        self.lock = threading.Lock()
        self.fetched_final = threading.Event()
        self.hosts: set[str] = set()
        self.last_fetch = -1e9
        graph = root.compiled_graph
        data = {
            "name": prep.name,
            "trained": False,
            "task": prep.data.kind,
            "source": prep.data.source,
            "loss": prep.loss,
            "learningRate": self.model.num(float(prep.settings.learning_rate)),
            "precision": precision,
            "inputs": list(graph.input_names),
            "classes": class_labels(prep.data.kind, prep.data.classes, len(graph.elements)),
            **self.model.shape(),
            "steps": self._steps(),
            "history": self.history,
            "metrics": [],
            "formula": {
                "text": None,
                "mathml": None,
                "note": "The formula is in the report written when training ends.",
            },
            "surface": None,
            "live": {"url": "state.json", "every": int(EVERY * 1000)},
            "stepsAsked": 1,
        }
        self.page = render(data).encode("utf-8")
        self.state = self._state()

    def _steps(self) -> list[Any]:
        X, y = self.sample
        if not X:
            return []
        if self.params is not None:
            self.model.graph.set_param_values(self.params)
        p = self.prep
        return self.model.steps(X, y, p.loss, float(p.settings.learning_rate), 1)

    def _state(self) -> bytes:
        steps = self._steps()
        state = {
            "epoch": self.epoch,
            "epochs": self.prep.settings.epochs,
            "done": self.done,
            "report": str(self.report) if self.done and self.report is not None else None,
            "history": self.history,
            "metrics": self.metrics,
            "step": steps[0] if steps else None,
        }
        return json.dumps(state, allow_nan=False, separators=(",", ":")).encode("utf-8")

    def progress_too(self, shown: Any) -> Any:
        """A progress callback that also feeds the page (after `shown`, the terminal's, if any)."""

        def both(epoch: int, train: float, validation: float | None, extra: dict[str, float]) -> None:
            if shown is not None:
                shown(epoch, train, validation, extra)
            self.progress(epoch, train, validation, extra)

        return both

    def watch(self, epoch: int, params: list[float]) -> None:
        """Each epoch's parameters (from the trainer's epoch callback)."""
        self.params = list(params)

    def progress(self, epoch: int, train: float, validation: float | None, extra: dict[str, float]) -> None:
        """Each epoch's losses; the page's state is traced again at most every EVERY seconds."""
        if epoch == 0:
            return
        num = self.model.num
        with self.lock:
            self.epoch = epoch
            self.history["train"].append(train if math.isfinite(train) else None)  # type: ignore[arg-type]
            if validation is not None:
                self.history["validation"].append(validation if math.isfinite(validation) else None)  # type: ignore[arg-type]
            row = {"part": f"training rows, epoch {epoch}", "loss": num(float(train))}
            if "accuracy" in extra:
                row["accuracy"] = f"{extra['accuracy']:.2%}"
            self.metrics = [row] + (
                [{"part": f"validation rows, epoch {epoch}", "loss": num(float(validation))}]
                if validation is not None
                else []
            )
        now = time.monotonic()
        if now - self.traced_at >= EVERY or epoch == self.prep.settings.epochs:
            self.traced_at = now
            state = self._state()
            with self.lock:
                self.state = state

    def finish(self, model_file: Path | None) -> None:
        """Training ended: write the report of the saved model, and serve the final state."""
        if model_file is not None and self.report is not None:
            write_page(self.report, model_file, force=self.force, option="--live")
        with self.lock:
            self.done = True
        state = self._state()
        with self.lock:
            self.state = state

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve the page while the block runs; yields its URL (with the token)."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        port = server.server_address[1]
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}/{self.token}/"
            if self.done and self.recently_fetched():
                self.fetched_final.wait(MAX_WAIT)  # let an open page see the end
        finally:
            server.shutdown()
            server.server_close()

    def recently_fetched(self) -> bool:
        """Whether a page fetched the state in the last two seconds (one is open)."""
        return time.monotonic() - self.last_fetch < 2.0

    def answer(self, path: str, host: str | None) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of `path` with the Host header `host`."""
        prefix = f"/{self.token}/"
        if host not in self.hosts or not hmac.compare_digest(path[: len(prefix)].encode(), prefix.encode()):
            return 403, "text/plain; charset=utf-8", b"forbidden\n"
        rest = path[len(prefix) :]
        if rest == "":
            return 200, "text/html; charset=utf-8", self.page
        if rest == "state.json":
            with self.lock:
                body, final = self.state, self.done
            self.last_fetch = time.monotonic()
            if final:
                self.fetched_final.set()
            return 200, "application/json", body
        return 404, "text/plain; charset=utf-8", b"not found\n"


def _handler(view: LiveView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """GET only; the view decides."""

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            status, kind, body = view.answer(self.path, self.headers.get("Host"))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the training's progress owns the terminal."""

    return Handler
