#!/usr/bin/env bash
# `make run`: migrate the database, load the demo data on the first run, then
# start the scheduler in the background and the web app in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
FLASK=".venv/bin/flask --app marketplace"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5000}"
INSTANCE="${INSTANCE_PATH:-instance}"
# Links in e-mails and Stripe's return addresses point at this server unless told otherwise.
export PUBLIC_URL="${PUBLIC_URL:-http://$HOST:$PORT}"

# Payments: Stripe's test mode when STRIPE_API_KEY is set; otherwise a local fake
# Stripe (localstripe with the project's extensions, a development tool that is
# never part of the shipped package) on 127.0.0.1, so pledging works out of the box.
children=()
trap 'kill "${children[@]}" 2>/dev/null || true' EXIT INT TERM
if [ -z "${STRIPE_API_KEY:-}" ]; then
  STRIPE_PORT="${STRIPE_PORT:-8420}"
  .venv/bin/python -c "import localstripe" 2>/dev/null ||
    .venv/bin/python -m pip install --quiet "localstripe==1.15.10"
  .venv/bin/python -m tests.support.stripe_server --port "$STRIPE_PORT" --debit-delay 20 &
  children+=($!)
  export STRIPE_API_KEY="sk_test_local" STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
  export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_local_development}"
  # Send Stripe's webhooks to this app (localstripe keeps them in memory only).
  .venv/bin/python - "$STRIPE_API_BASE" "http://$HOST:$PORT/webhooks/stripe" <<'PY'
import os, sys, time, urllib.parse, urllib.request
base, target = sys.argv[1], sys.argv[2]
data = urllib.parse.urlencode({"url": target, "secret": os.environ["STRIPE_WEBHOOK_SECRET"]})
for _ in range(100):
    try:
        urllib.request.urlopen(f"{base}/_config/webhooks/marketplace", data.encode(), timeout=2)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the local fake Stripe did not start")
PY
  STRIPE_NOTE="a local fake Stripe on $STRIPE_API_BASE (set STRIPE_API_KEY for Stripe's test mode)"
else
  STRIPE_NOTE="Stripe with the configured STRIPE_API_KEY"
fi

$FLASK db upgrade
mkdir -p "$INSTANCE"
if [ ! -e "$INSTANCE/.demo-loaded" ]; then
  $FLASK demo load >/dev/null
  touch "$INSTANCE/.demo-loaded"
fi

$FLASK scheduler run &
children+=($!)
# marketplace.wsgi sets up logging as production does: e-mails without SMTP (such as the
# links to confirm an address or reset a password) are written to this console.
.venv/bin/flask --app marketplace.wsgi run --host "$HOST" --port "$PORT" --no-reload &
web=$!
children+=($web)
# The banner comes last, once the app answers, so it is the last thing on the screen.
.venv/bin/python - "$HOST" "$PORT" <<'PY'
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()
        break
    except OSError:
        time.sleep(0.1)
PY
echo
echo "  Social Outcomes Marketplace: http://$HOST:$PORT"
echo "  Payments: $STRIPE_NOTE"
$FLASK demo logins | sed 's/^/  /'
echo "  Stop with Ctrl-C."
echo
wait "$web"
