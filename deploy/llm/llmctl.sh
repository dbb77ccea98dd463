#!/usr/bin/env bash
# Control the local OpenAI-compatible LLM servers (dev/CI). Production: see deploy/llm/README.md.
#
#   deploy/llm/llmctl.sh start  vllm|llamacpp   # start in the background and wait until healthy
#   deploy/llm/llmctl.sh wait   vllm|llamacpp   # wait until GET /v1/models answers
#   deploy/llm/llmctl.sh stop   vllm|llamacpp   # stop (whole process group) and wait
#   deploy/llm/llmctl.sh status                 # state of both engines
#
# Engines (both bind 127.0.0.1 only and serve the model under $LLM_SERVED_NAME):
#   vllm      vLLM (CPU build) in .venv-vllm on the HF bf16 folder $LLM_MODEL_DIR
#             (deploy/llm/install_vllm.sh; python -m modelprep.llm --engine vllm)
#   llamacpp  llama.cpp's server via xllamacpp in .venv on the packaged GGUF
#
# Environment (defaults):
#   VLLM_PORT=8001  LLAMACPP_PORT=8002  LLM_MODEL_DIR=.cache/models/gemma3-270m
#   LLM_SERVED_NAME=gemma3-270m  LLM_MAX_MODEL_LEN=4096  VLLM_CPU_KVCACHE_SPACE=1 (GiB)
#   HF_HUB_OFFLINE=1  LLM_START_TIMEOUT=300 (s)  LLM_CHAT_TEMPLATE=deploy/llm/chat_template_gemma_base.jinja
#   VLLM_VENV=.venv-vllm  MAIN_VENV=.venv  VLLM_EXTRA_ARGS=""  LLAMACPP_EXTRA_ARGS=""
#   LLAMACPP_PARALLEL=2 (request slots, each with LLM_MAX_MODEL_LEN tokens of context)
#   LLAMACPP_THREADS (default: cores - 1, min. 1)  VLLM_DTYPE (default: bfloat16 if the CPU has
#   AVX512-BF16/AMX, else float32)
#   LLM_RUN_DIR=var/run  LLM_LOG_DIR=var/log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

: "${VLLM_PORT:=8001}"
: "${LLAMACPP_PORT:=8002}"
: "${LLM_MODEL_DIR:=.cache/models/gemma3-270m}"
: "${LLM_SERVED_NAME:=gemma3-270m}"
: "${LLM_MAX_MODEL_LEN:=4096}"
: "${LLM_START_TIMEOUT:=300}"
: "${LLM_CHAT_TEMPLATE:=deploy/llm/chat_template_gemma_base.jinja}"
: "${VLLM_VENV:=.venv-vllm}"
: "${MAIN_VENV:=.venv}"
: "${LLM_RUN_DIR:=var/run}"
: "${LLM_LOG_DIR:=var/log}"
: "${VLLM_EXTRA_ARGS:=}"
: "${LLAMACPP_EXTRA_ARGS:=}"
: "${LLAMACPP_PARALLEL:=2}"
# vLLM dtype: bf16 only where the CPU computes it natively (AVX512-BF16/AMX); otherwise float32.
# Without it (AMD EPYC here: AVX2 only) oneDNN falls back and bf16 prefill is ~4x slower
# (2.8k-token prompt: TTFT 130-180 s bf16 vs 32 s float32, measured).
if [[ -z "${VLLM_DTYPE:-}" ]]; then
  if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then VLLM_DTYPE=bfloat16; else VLLM_DTYPE=float32; fi
fi
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1

say() { printf '[llmctl] %s\n' "$*"; }
die() { printf '[llmctl] ERROR: %s\n' "$*" >&2; exit 1; }

port_of() {
  case "$1" in
    vllm) echo "$VLLM_PORT" ;;
    llamacpp) echo "$LLAMACPP_PORT" ;;
    *) die "unknown engine '$1' (expected vllm or llamacpp)" ;;
  esac
}
pidfile() { echo "$LLM_RUN_DIR/llm-$1.pid"; }
logfile() { echo "$LLM_LOG_DIR/llm-$1.log"; }
base_url() { echo "http://127.0.0.1:$(port_of "$1")"; }

# The pid of our server for this engine if the process is alive, else nothing.
live_pid() {
  local f pid
  f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# Healthy = GET /v1/models answers 200 and lists the served model name.
healthy() {
  local body
  body="$(curl -fsS --max-time 3 "$(base_url "$1")/v1/models" 2>/dev/null)" || return 1
  grep -q "\"$LLM_SERVED_NAME\"" <<<"$body"
}

port_in_use() {
  # bash's /dev/tcp: succeeds when something accepts connections on the port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

show_log_tail() {
  local log
  log="$(logfile "$1")"
  if [[ -f "$log" ]]; then
    echo "----- last 40 lines of $log -----" >&2
    tail -n 40 "$log" >&2
    echo "-----" >&2
  fi
}

build_cmd() {
  local engine="$1"
  CMD=()
  case "$engine" in
    vllm)
      [[ -x "$VLLM_VENV/bin/python" ]] || die "$VLLM_VENV missing: run deploy/llm/install_vllm.sh"
      [[ -f "$LLM_MODEL_DIR/.complete" ]] \
        || die "$LLM_MODEL_DIR not prepared: run .venv/bin/python -m modelprep.llm --engine vllm --out $LLM_MODEL_DIR"
      # `vllm serve` fails for the vllm-cpu distribution (PackageNotFoundError: vllm): use the module.
      # --enforce-eager: no torch.compile/graph capture (start-up ~30-60 s instead of ~2 min).
      # --generation-config vllm: ignore the model's generation_config.json defaults.
      # shellcheck disable=SC2206
      CMD=("$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server
        --model "$LLM_MODEL_DIR" --served-model-name "$LLM_SERVED_NAME"
        --host 127.0.0.1 --port "$VLLM_PORT"
        --dtype "$VLLM_DTYPE" --max-model-len "$LLM_MAX_MODEL_LEN" --enforce-eager
        --chat-template "$LLM_CHAT_TEMPLATE" --generation-config vllm
        --disable-uvicorn-access-log $VLLM_EXTRA_ARGS)
      ;;
    llamacpp)
      [[ -x "$MAIN_VENV/bin/python" ]] || die "$MAIN_VENV missing (main venv with xllamacpp)"
      # shellcheck disable=SC2206
      CMD=("$MAIN_VENV/bin/python" deploy/llm/llamacpp_server.py
        --host 127.0.0.1 --port "$LLAMACPP_PORT" --served-model-name "$LLM_SERVED_NAME"
        --ctx-size "$LLM_MAX_MODEL_LEN" --parallel "$LLAMACPP_PARALLEL"
        --chat-template "$LLM_CHAT_TEMPLATE" $LLAMACPP_EXTRA_ARGS)
      ;;
  esac
}

# Wait until healthy. $2 = start time (epoch s) used for the elapsed figure.
wait_ready() {
  local engine="$1" t0="${2:-$(date +%s)}" pid now
  while true; do
    now="$(date +%s)"
    if healthy "$engine"; then
      say "$engine ready on $(base_url "$engine") after $((now - t0)) s"
      return 0
    fi
    pid="$(live_pid "$engine")"
    if [[ -z "$pid" ]] && ! port_in_use "$(port_of "$engine")"; then
      say "$engine is not running (died after $((now - t0)) s)" >&2
      show_log_tail "$engine"
      return 1
    fi
    if (( now - t0 >= LLM_START_TIMEOUT )); then
      say "$engine not ready after $((now - t0)) s (timeout ${LLM_START_TIMEOUT} s)" >&2
      show_log_tail "$engine"
      return 1
    fi
    sleep 1
  done
}

cmd_start() {
  local engine="$1" port pid log t0
  port="$(port_of "$engine")"
  if healthy "$engine"; then
    say "$engine already running and healthy on $(base_url "$engine")"
    return 0
  fi
  mkdir -p "$LLM_RUN_DIR" "$LLM_LOG_DIR"
  # Serialise concurrent `start`s of the same engine (parallel test runs, make -j).
  exec 9>"$LLM_RUN_DIR/llm-$engine.lock"
  flock 9
  pid="$(live_pid "$engine")"
  if [[ -n "$pid" ]]; then
    exec 9>&-
    say "$engine (pid $pid) is starting; waiting"
    wait_ready "$engine" "$(stat -c %Y "$(pidfile "$engine")")"
    return
  fi
  if port_in_use "$port"; then
    exec 9>&-
    healthy "$engine" && { say "$engine already running and healthy on $(base_url "$engine")"; return 0; }
    die "port $port is in use by another process that does not serve '$LLM_SERVED_NAME' (set ${engine^^}_PORT)"
  fi
  build_cmd "$engine"
  log="$(logfile "$engine")"
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
  {
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) llmctl start $engine"
    echo "# VLLM_CPU_KVCACHE_SPACE=$VLLM_CPU_KVCACHE_SPACE HF_HUB_OFFLINE=$HF_HUB_OFFLINE"
    echo "# ${CMD[*]}"
  } >"$log"
  t0="$(date +%s)"
  # setsid: own session/process group (pid == pgid), so `stop` can kill all its children
  # (vLLM's engine-core process, OpenMP workers) and it survives the calling shell.
  setsid nohup "${CMD[@]}" >>"$log" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$(pidfile "$engine")"
  exec 9>&-
  say "started $engine (pid $pid, port $port, log $log); waiting up to ${LLM_START_TIMEOUT} s"
  wait_ready "$engine" "$t0"
}

cmd_stop() {
  local engine="$1" pid i
  pid="$(live_pid "$engine")"
  if [[ -z "$pid" ]]; then
    rm -f "$(pidfile "$engine")"
    if port_in_use "$(port_of "$engine")"; then
      say "$engine: no pid file, but port $(port_of "$engine") is in use by a process llmctl did not start; not touching it"
    else
      say "$engine is not running"
    fi
    return 0
  fi
  say "stopping $engine (process group $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 -- "-$pid" 2>/dev/null; then
    say "$engine did not exit after 30 s; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$(pidfile "$engine")"
  say "$engine stopped"
}

cmd_status() {
  local engine pid state rc=0 rss
  for engine in vllm llamacpp; do
    pid="$(live_pid "$engine")"
    if healthy "$engine"; then
      state="healthy"
    elif [[ -n "$pid" ]]; then
      state="starting (not answering yet)"
      rc=1
    else
      state="stopped"
      rc=1
    fi
    rss=""
    [[ -n "$pid" ]] && rss=", rss $(( $(ps -o rss= -p "$pid" 2>/dev/null || echo 0) / 1024 )) MiB"
    printf '%-9s %-28s %s%s\n' "$engine" "$state" "$(base_url "$engine")" \
      "${pid:+ (pid $pid$rss, log $(logfile "$engine"))}"
  done
  return $rc
}

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

action="${1:-}"
engine="${2:-}"
case "$action" in
  start | stop | wait)
    [[ -n "$engine" ]] || usage
    port_of "$engine" >/dev/null
    case "$action" in
      start) cmd_start "$engine" ;;
      stop) cmd_stop "$engine" ;;
      wait) wait_ready "$engine" ;;
    esac
    ;;
  status) cmd_status ;;
  *) usage ;;
esac
