#!/usr/bin/env bash
# Blue-green switch and rollback for nginx (docs/operations.md):
#   deploy/rollback.sh            send all traffic to the deployment that is NOT live now (the rollback)
#   deploy/rollback.sh blue|green send all traffic to that deployment (the release step)
#   deploy/rollback.sh status     print the live deployment
# Re-renders deploy/nginx/nginx.conf.template with weights 100/0 or 0/100, checks it with `nginx -t`, reloads
# nginx, then checks /ready through nginx (the LLM answers, the index holds chunks, the injection classifier is
# loaded: /health only says the process is up); on any failure the previous config is put back and reloaded.
# DEPLOY_MODE=compose (default: nginx in docker compose), systemd (Debian's nginx on the host) or local (an
# nginx started with `-p NGINX_PREFIX -c NGINX_CONF_OUT`, e.g. the integration test's loopback nginx).
set -euo pipefail
DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE="${DEPLOY_MODE:-compose}"
RENDERED="${NGINX_CONF_OUT:-$DEPLOY/nginx/rendered/nginx.conf}"
STATE="${BLUEGREEN_STATE:-$(dirname "$RENDERED")/live}"
HEALTH_URL="${HEALTH_URL:-http://127.0.0.1/ready}"
if [[ "$MODE" == compose ]]; then
  : "${BLUE_SERVERS:=api-blue:8000}" "${GREEN_SERVERS:=api-green:8000}" "${NGINX_STATE_DIR:=/var/cache/nginx}"
elif [[ "$MODE" == local ]]; then
  : "${NGINX_PREFIX:?DEPLOY_MODE=local needs NGINX_PREFIX}" "${BLUE_SERVERS:?}" "${GREEN_SERVERS:?}"
  : "${NGINX_STATE_DIR:=$NGINX_PREFIX/state}" "${NGINX_LOG_DIR:=$NGINX_PREFIX/logs}"
else
  : "${BLUE_SERVERS:=127.0.0.1:8101 127.0.0.1:8102}" "${GREEN_SERVERS:=127.0.0.1:8201 127.0.0.1:8202}"
  : "${NGINX_STATE_DIR:=/var/lib/nginx}"
fi

live="$(cat "$STATE" 2>/dev/null || echo blue)"
target="${1:-$([[ "$live" == blue ]] && echo green || echo blue)}"
case "$target" in
  blue) weights=100/0 ;;
  green) weights=0/100 ;;
  status) echo "$live"; exit 0 ;;
  *) echo "usage: $0 [blue|green|status]" >&2; exit 2 ;;
esac

args=(--weights "$weights" --listen "${NGINX_LISTEN:-80}" --state-dir "$NGINX_STATE_DIR" --log-dir "${NGINX_LOG_DIR:-/var/log/nginx}")
[[ -n "${NGINX_RATE:-}" ]] && args+=(--rate "$NGINX_RATE" --burst "${NGINX_BURST:-40}")
for s in $BLUE_SERVERS; do args+=(--blue "$s"); done
for s in $GREEN_SERVERS; do args+=(--green "$s"); done
[[ -n "${TLS_CERT:-}" ]] && args+=(--tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")

nginx_do() {  # run an nginx command where nginx runs
  if [[ "$MODE" == compose ]]; then docker compose -f "$DEPLOY/docker-compose.yml" exec -T nginx nginx "$@"
  elif [[ "$MODE" == local ]]; then nginx -p "$NGINX_PREFIX" -c "$RENDERED" -e "$NGINX_LOG_DIR/error.log" "$@"
  else nginx -c "$RENDERED" "$@"; fi
}
reload() {
  if [[ "$MODE" == systemd ]]; then systemctl reload nginx; else nginx_do -s reload; fi
}

mkdir -p "$(dirname "$RENDERED")"
backup="$(mktemp)"; trap 'rm -f "$backup"' EXIT
[[ -f "$RENDERED" ]] && cat "$RENDERED" > "$backup"
python3 "$DEPLOY/nginx/render.py" "${args[@]}" --out "$RENDERED.new"
cat "$RENDERED.new" > "$RENDERED" && rm -f "$RENDERED.new"   # in place: the compose bind mount keeps the inode

restore() {
  echo "!! $1: restoring the previous nginx config ($live live)" >&2
  if [[ -s "$backup" ]]; then cat "$backup" > "$RENDERED"; reload || true; fi
  exit 1
}
nginx_do -t -q || restore "nginx -t rejected the new config"
reload || restore "nginx reload failed"
sleep 2
for _ in 1 2 3 4 5; do
  if curl -fsS -m 5 -o /dev/null "$HEALTH_URL"; then
    echo "$target" > "$STATE"
    echo "live: $target (weights blue/green $weights); was: $live"
    exit 0
  fi
  sleep 2
done
restore "$HEALTH_URL failed after the switch to $target"
