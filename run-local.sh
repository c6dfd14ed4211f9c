#!/usr/bin/env bash
# Waybill on a laptop, from a fresh clone.
#   ./run-local.sh         set up (.venv, dependencies, `flask deploy`: migrations, admin) and start Gunicorn
#   ./run-local.sh test    set up and run the whole test suite: SQLite, and PostgreSQL too when
#                          TEST_DATABASE_URL is set; extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
PREFERRED_PORTS=(5000 5001 5002 5050 8000 8080)

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

check_python() {
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install Python 3.11 or newer (or set PYTHON=...)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is needed; $PYTHON is $("$PYTHON" -V 2>&1)"
}

# Install a requirements file into .venv unless the same files were installed already. constraints.txt pins what
# the requirements pull in, so every machine installs the versions CI tested.
install_requirements() {
  local file=$1 stamp="$VENV/.installed-$(basename "$1")" digest
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  digest=$(cat requirements*.txt constraints.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    say "Installing $file"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file" -c constraints.txt
    echo "$digest" > "$stamp"
  fi
}

# The Hindi (and any other) catalogues under translations/, compiled to the .mo files the app reads (never committed).
compile_translations() {
  "$VENV/bin/pybabel" -q compile -d translations
}

# A value from the environment, else from .env, else empty.
setting() {
  local name=$1 value=${!1:-}
  if [ -z "$value" ] && [ -f .env ]; then
    value=$(sed -n "s/^${name}=//p" .env | tail -n 1)
  fi
  printf '%s' "$value"
}

free_port() {
  local port
  for port in "$@"; do
    if "$VENV/bin/python" - "$port" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
    then echo "$port"; return 0; fi
  done
  return 1
}

# Rate-limit counters in memory belong to one process: several workers would each let the whole limit through.
# So: one worker, unless RATELIMIT_STORAGE_URI names a shared store (Redis), or the limits are switched off.
choose_workers() {
  local storage workers enabled
  storage=$(setting RATELIMIT_STORAGE_URI); workers=$(setting WEB_CONCURRENCY); enabled=$(setting RATELIMIT_ENABLED)
  case "${enabled:-true}" in 0|false|False|no|off) return 0 ;; esac
  case "${storage:-memory://}" in
    memory://*)
      if [ -n "$workers" ] && [ "$workers" != 1 ]; then
        die "WEB_CONCURRENCY=$workers with rate-limit counters in memory would multiply every limit by $workers; set RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 (a shared store) or WEB_CONCURRENCY=1"
      fi
      export WEB_CONCURRENCY=1
      say "One Gunicorn worker: rate-limit counters are in memory (RATELIMIT_STORAGE_URI=redis://... allows more)"
      ;;
  esac
}

# On a laptop the one Gunicorn process also serves the push streams (SSE_STREAMS is on outside production), a
# thread each while a tracking page or the live map is open: more threads than the container's 4, and at most
# half of them for streams, so pages always have threads left (past that a page polls instead).
choose_stream_threads() {
  local threads streams
  threads=$(setting GUNICORN_THREADS); streams=$(setting SSE_MAX_STREAMS)
  export GUNICORN_THREADS=${threads:-32}
  export SSE_MAX_STREAMS=${streams:-$((GUNICORN_THREADS / 2))}
}

run_app() {
  check_python
  install_requirements requirements.txt
  compile_translations
  mkdir -p instance

  # A stable development secret, kept out of the repository.
  if [ -z "$(setting SECRET_KEY)" ]; then
    [ -s instance/.secret-key ] || "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(32))' > instance/.secret-key
    export SECRET_KEY; SECRET_KEY=$(cat instance/.secret-key)
  fi

  local admin_user admin_password from_defaults=""
  admin_user=$(setting ADMIN_USERNAME); admin_password=$(setting ADMIN_PASSWORD)
  if [ -z "$admin_user" ] || [ -z "$admin_password" ]; then
    from_defaults=1
    admin_user=${admin_user:-admin}
    if [ -z "$admin_password" ]; then
      [ -s instance/.admin-password ] || "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))' > instance/.admin-password
      admin_password=$(cat instance/.admin-password)
    fi
  fi
  export ADMIN_USERNAME=$admin_user ADMIN_PASSWORD=$admin_password

  local port wanted
  wanted=$(setting PORT)
  if [ -n "$wanted" ]; then
    port=$(free_port "$wanted") || die "PORT=$wanted is in use"
  else
    port=$(free_port "${PREFERRED_PORTS[@]}") || die "none of the ports ${PREFERRED_PORTS[*]} is free; set PORT"
  fi
  # Links in emails, QR codes and List-Unsubscribe follow the chosen port unless PUBLIC_BASE_URL is set (in the
  # environment or .env); the app's config derives the same from PORT, this only makes it visible.
  export PORT=$port BIND=127.0.0.1:$port
  local base_url; base_url=$(setting PUBLIC_BASE_URL)
  export PUBLIC_BASE_URL=${base_url:-http://localhost:$port}
  case "$PUBLIC_BASE_URL" in  # an .env copied from an older .env.example still names port 5000
    http://localhost:*|http://127.0.0.1:*)
      [ "${PUBLIC_BASE_URL##*:}" = "$port" ] || say "Warning: PUBLIC_BASE_URL=$PUBLIC_BASE_URL, but Waybill listens on port $port: links in emails will miss it (remove PUBLIC_BASE_URL from .env)" ;;
  esac

  choose_workers
  choose_stream_threads

  say "Applying database migrations and ensuring the admin"
  "$VENV/bin/flask" --app app deploy

  if [ -n "$from_defaults" ]; then
    say "Admin sign-in (defaults): username '$admin_user', password '$admin_password'"
    echo "    Set ADMIN_USERNAME and ADMIN_PASSWORD in .env (see .env.example) to choose your own;"
    echo "    add operators with: $VENV/bin/flask --app app users create NAME --role operator"
  else
    say "Admin sign-in: username '$admin_user' (password from ADMIN_PASSWORD)"
  fi
  say "Waybill is starting at http://localhost:$port  (Ctrl-C stops it; links in emails: $PUBLIC_BASE_URL)"
  local mail_backend; mail_backend=$(setting MAIL_BACKEND)
  if [ "${mail_backend:-console}" = "console" ]; then
    say "Emails are printed to this console (MAIL_BACKEND=console); set MAIL_BACKEND=smtp to send real mail"
  fi
  exec "$VENV/bin/gunicorn" -c gunicorn.conf.py --bind "127.0.0.1:$port" "app:create_app()"
}

# Debian packages some tests need: "command:package" pairs. Installed under CI=true; elsewhere those tests skip
# with a message saying what to install. redis-server: the shared rate-limit tests start a private one.
# podman, runc and debootstrap: the container test (tests/deploy/test_container.py) builds the Dockerfile with
# podman on a debootstrapped stand-in for the base image.
TEST_TOOLS=(chromium:chromium pdftoppm:poppler-utils zbarimg:zbar-tools redis-server:redis-server podman:podman
            runc:runc debootstrap:debootstrap)

ensure_test_tools() {
  local pair missing=()
  for pair in "${TEST_TOOLS[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${CI:-}" = "true" ]; then
    say "Installing Debian packages for the tests: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || die "could not install ${missing[*]}"
  else
    echo "Not installed: ${missing[*]} (the tests that need them are skipped; apt-get install -y ${missing[*]})."
  fi
}

ensure_node_modules() {
  [ -f package.json ] || return 0
  local stamp=node_modules/.installed-lock digest
  digest=$(sha256sum package-lock.json 2>/dev/null | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    if command -v npm >/dev/null 2>&1; then
      say "Installing test assets from npm (axe-core)"
      npm ci --no-audit --no-fund --loglevel=error && echo "$digest" > "$stamp"
    elif [ "${CI:-}" = "true" ]; then
      die "npm is needed for the accessibility checks"
    fi
  fi
}

run_tests() {
  check_python
  install_requirements requirements-dev.txt
  compile_translations
  ensure_node_modules
  ensure_test_tools
  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    say "Running the suite on SQLite and on PostgreSQL (${TEST_DATABASE_URL%%@*}@…)"
  else
    say "Running the suite on SQLite (set TEST_DATABASE_URL to run it on PostgreSQL too)"
  fi
  # The files are shared among TEST_WORKERS processes (pytest-xdist; default one per core, 0: none), each with
  # its own databases, a whole file to one process, in the order tests/conftest.py puts them (longest first;
  # --no-loadscope-reorder: xdist would otherwise sort the files by their count of tests, and the container's four
  # long tests started last). COVERAGE=1: the line coverage of app/ too (in the test
  # processes; the servers the tests start are not counted), printed at the end. It is not on by default: its
  # tracer costs the suite 60 % more CPU (13.5 instead of about 9 minutes on 2 cores).
  local workers=${TEST_WORKERS:-auto}
  local parallel=(-n "$workers" --dist loadfile --no-loadscope-reorder)
  [ "$workers" = 0 ] && parallel=()
  local coverage=()
  [ "${COVERAGE:-0}" = 1 ] && coverage=(--cov --cov-report=term:skip-covered)
  exec "$VENV/bin/python" -m pytest "${parallel[@]}" "${coverage[@]}" "$@"
}

case "${1:-run}" in
  run) run_app ;;
  test) shift; run_tests "$@" ;;
  -h|--help|help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (use: ./run-local.sh [run|test])" ;;
esac
