#!/usr/bin/env bash
# `make run`: migrate the database, load the demo data on the first run, then
# start the scheduler in the background and the web app in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
FLASK=".venv/bin/flask --app marketplace"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5000}"
INSTANCE="${INSTANCE_PATH:-instance}"

$FLASK db upgrade
mkdir -p "$INSTANCE"
if [ ! -e "$INSTANCE/.demo-loaded" ]; then
  $FLASK demo load >/dev/null
  touch "$INSTANCE/.demo-loaded"
fi

$FLASK scheduler run &
scheduler=$!
trap 'kill "$scheduler" 2>/dev/null || true' EXIT INT TERM

echo
echo "  Social Outcomes Marketplace: http://$HOST:$PORT"
$FLASK demo logins | sed 's/^/  /'
echo "  Stop with Ctrl-C."
echo
$FLASK run --host "$HOST" --port "$PORT" --no-reload
