"""llama.cpp's OpenAI-compatible HTTP server (via xllamacpp) on the packaged Gemma 3 270M GGUF.

The lighter local engine: no conversion, no second venv, ~0.3 GB RSS, loads in seconds.
Started by ``deploy/llm/llmctl.sh start llamacpp``; by hand (main venv)::

    .venv/bin/python deploy/llm/llamacpp_server.py --port 8002 --served-model-name gemma3-270m

It renders chats with the same Jinja chat template as the vLLM engine
(``deploy/llm/chat_template_gemma_base.jinja``, llama.cpp's ``--jinja --chat-template-file``),
so both engines see the same prompt for the app's messages.
Endpoints: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/health``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = ROOT / "deploy" / "llm" / "chat_template_gemma_base.jinja"


def _log(msg: str) -> None:
    print(f"[llamacpp_server] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (defaults match ``llmctl.sh``)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("LLAMACPP_PORT", "8002")))
    ap.add_argument("--served-model-name", default=os.environ.get("LLM_SERVED_NAME", "gemma3-270m"))
    ap.add_argument("--model", help="GGUF file (default: the packaged Gemma 3 270M, assembled on first use)")
    ap.add_argument(
        "--ctx-size",
        type=int,
        default=int(os.environ.get("LLM_MAX_MODEL_LEN", "4096")),
        help="context length per slot (tokens)",
    )
    ap.add_argument("--parallel", type=int, default=1, help="parallel request slots (each gets --ctx-size)")
    ap.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("LLAMACPP_THREADS", "0")) or None,
        help="CPU threads (default: cores - 1, min. 1: faster on a busy 2-core box, see README)",
    )
    ap.add_argument("--poll", type=int, default=None, help="llama.cpp busy-wait polling level 0-100 (default 50)")
    ap.add_argument(
        "--chat-template",
        default=str(DEFAULT_TEMPLATE),
        help="Jinja chat template file; '' = the template embedded in the GGUF (if any)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the server and block until SIGTERM/SIGINT."""
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import xllamacpp as xlc

    from modelprep.llm import gguf_path

    model = Path(args.model) if args.model else gguf_path()
    template = Path(args.chat_template).read_text(encoding="utf-8") if args.chat_template else ""

    p = xlc.CommonParams()
    p.model.path = str(model)
    p.hostnames = [args.host]
    p.port = args.port
    p.model_alias = {args.served_model_name}  # the id /v1/models lists and responses carry
    p.n_parallel = args.parallel
    p.n_ctx = args.ctx_size * args.parallel  # llama.cpp splits n_ctx over the slots
    p.kv_unified = False
    threads = args.threads or max(1, (os.cpu_count() or 2) - 1)
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    if args.poll is not None:
        p.cpuparams.poll = args.poll
        p.cpuparams_batch.poll = args.poll
    p.use_jinja = True
    if template:
        p.chat_template = template  # the template text (what --chat-template-file reads)
    p.enable_chat_template = True
    # Plain answers: no <think> parsing for this base model.
    p.reasoning_format = xlc.common_reasoning_format.COMMON_REASONING_FORMAT_NONE
    p.ui = False  # no web UI
    p.offline = True  # never reach out to a model hub
    p.warmup = True
    p.fit_params = False  # CPU only: nothing to fit to GPU memory
    p.cache_prompt = True

    t0 = time.monotonic()
    _log(f"loading {model} (ctx {args.ctx_size} x {args.parallel} slot(s), {threads} threads)")
    server = xlc.Server(p)  # loads the model and starts the HTTP server threads
    _log(
        f"serving '{args.served_model_name}' on {server.listening_address} (ready after {time.monotonic() - t0:.1f} s)"
    )

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(1.0)
    _log("stopping")

    # ~Server waits for the main loop, which can hang on a request still generating: don't hang forever.
    def _hard_exit() -> None:
        _log("shutdown took > 10 s; exiting hard")
        os._exit(0)

    watchdog = threading.Timer(10.0, _hard_exit)
    watchdog.daemon = True
    watchdog.start()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
