#!/usr/bin/env bash
# Start / stop the API (uvicorn) in the background, on loopback, with a pid file and a log.
# Usage: deploy/apictl.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${API_PORT:-8000}"
HOST="${API_HOST:-127.0.0.1}"
PID_FILE=var/run/api.pid
LOG=var/log/api.log
mkdir -p var/run var/log

healthy() { curl -fsS -m 2 "http://${HOST}:${PORT}/health" >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if healthy; then echo "api: already running on http://${HOST}:${PORT}"; exit 0; fi
    echo "api: starting on http://${HOST}:${PORT} (log: ${LOG})"
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False \
      setsid nohup .venv/bin/uvicorn server:app --host "$HOST" --port "$PORT" --no-proxy-headers --no-access-log >"$LOG" 2>&1 &
    echo $! >"$PID_FILE"
    for i in $(seq 1 180); do
      if healthy; then echo "api: up after ${i} s"; exit 0; fi
      if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        echo "api: process exited during start-up; last log lines:" >&2; tail -n 30 "$LOG" >&2; exit 1
      fi
      sleep 1
    done
    echo "api: not healthy after 180 s; last log lines:" >&2; tail -n 30 "$LOG" >&2; exit 1
    ;;
  stop)
    if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      kill -TERM -- "-$(cat "$PID_FILE")" 2>/dev/null || kill -TERM "$(cat "$PID_FILE")"
      for _ in $(seq 1 20); do kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break; sleep 0.5; done
      echo "api: stopped"
    else
      echo "api: not running"
    fi
    rm -f "$PID_FILE"
    ;;
  status)
    if healthy; then echo "api: up on http://${HOST}:${PORT}"; else echo "api: down"; exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
