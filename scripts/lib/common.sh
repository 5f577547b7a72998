# shellcheck shell=bash
# Helpers shared by the operator scripts. Source it; it defines functions only. Every script calls
# require_bash first.

say()  { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$1" >&2; exit "${2:-1}"; }

# require_bash [MAJOR MINOR]: stop unless this bash is 4.4 or newer. Before 4.4, "${a[@]}" of an empty
# array is an "unbound variable" under set -u, and `mapfile -d` does not exist; macOS ships bash 3.2.
# The arguments (default: this shell's version) exist so the check itself can be tested.
require_bash() {
  local major=${1:-${BASH_VERSINFO[0]}} minor=${2:-${BASH_VERSINFO[1]}}
  if [ "$major" -lt 4 ] || { [ "$major" -eq 4 ] && [ "$minor" -lt 4 ]; }; then
    die "$(basename "$0") needs bash 4.4 or newer; this is bash $major.$minor. On macOS: brew install bash, then run it again (the scripts start with '#!/usr/bin/env bash', so the newer bash must come first on PATH)" 2
  fi
}

# usage_from_header SCRIPT: the script's leading comment block (after the #! line), without the '# '.
usage_from_header() {
  local line
  while IFS= read -r line; do
    case "$line" in
      '#!'*) ;;
      '#'*) line=${line#\#}; printf '%s\n' "${line# }" ;;
      *) return 0 ;;
    esac
  done < "$1"
}

# The repository root (scripts/..).
repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

# find_teamhub: sets TEAMHUB_CMD (an array) to the teamhub CLI: $TEAMHUB when set, else the
# repository's .venv/bin/teamhub, else `teamhub` on PATH. TEAMHUB_OPS_CMD runs the operator helper
# subcommands (release, images, set-image-tag, db) without loading the validator: $TEAMHUB_OPS, else
# `<the CLI's python> -m teamhub.cli.ops`, else the CLI itself.
# shellcheck disable=SC2034  # both arrays are used by the sourcing script
find_teamhub() {
  local root
  root=$(repo_root)
  if [ -n "${TEAMHUB:-}" ]; then
    read -r -a TEAMHUB_CMD <<< "$TEAMHUB"
    read -r -a TEAMHUB_OPS_CMD <<< "${TEAMHUB_OPS:-$TEAMHUB}"
  elif [ -x "$root/.venv/bin/teamhub" ]; then
    TEAMHUB_CMD=("$root/.venv/bin/teamhub")
    TEAMHUB_OPS_CMD=("$root/.venv/bin/python" -m teamhub.cli.ops)
  elif command -v teamhub >/dev/null 2>&1; then
    TEAMHUB_CMD=(teamhub)
    TEAMHUB_OPS_CMD=(teamhub)
  else
    die "the teamhub CLI was not found: run 'make setup', put teamhub on PATH, or set TEAMHUB=/path/to/teamhub" 2
  fi
}

# need TOOL...: stop with a clear message when a tool is missing.
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed or not on PATH" 2
  done
}

# confirm QUESTION: true when the operator agrees. --yes (ASSUME_YES=1) agrees; without a terminal
# and without --yes, refuse (nothing has been changed yet).
confirm() {
  if [ "${ASSUME_YES:-0}" = 1 ]; then
    return 0
  fi
  if [ ! -t 0 ]; then
    die "not confirmed: standard input is not a terminal; re-run with --yes to proceed (nothing was changed)" 3
  fi
  local answer
  read -r -p "$1 [y/N] " answer
  case "$answer" in y|Y|yes|YES) return 0 ;; *) return 1 ;; esac
}

# helm_major: 3 or 4, from `helm version`.
helm_major() {
  local v
  v=$(helm version --template '{{.Version}}' 2>/dev/null || helm version --short 2>/dev/null || true)
  case "$v" in
    v4*|4*) echo 4 ;;
    v3*|3*) echo 3 ;;
    *) die "cannot tell the helm version from '$v' (need Helm 3 or 4)" 2 ;;
  esac
}

# helm_wait_flags: flags that make helm wait for readiness and roll back automatically on failure.
#   Helm 3: --atomic (implies --wait);  Helm 4: --rollback-on-failure with --wait=watcher.
helm_atomic_flags() {
  if [ "$(helm_major)" = 4 ]; then
    echo "--rollback-on-failure --wait=watcher"
  else
    echo "--atomic --wait"
  fi
}
helm_wait_flag() {
  if [ "$(helm_major)" = 4 ]; then echo "--wait=watcher"; else echo "--wait"; fi
}

# hub_deployment NAMESPACE RELEASE: "deployment/<name>" of the release's hub, found only by its labels (a
# release's names depend on its name and on fullnameOverride, so no name is guessed); false when none exists.
hub_selector() { echo "app.kubernetes.io/instance=$1,app.kubernetes.io/component=hub"; }
hub_deployment() {
  local ns=$1 release=$2 name
  name=$(kubectl --namespace "$ns" get deployment -l "$(hub_selector "$release")" -o name 2>/dev/null | head -n 1)
  [ -n "$name" ] || return 1
  echo "$name"
}

# check_hub NAMESPACE RELEASE [TIMEOUT]: the hub Deployment is rolled out and its health endpoint answers
# (<hub.baseUrl>hub/health: the path is read from the Deployment's own startup probe, so it follows the values).
check_hub() {
  local ns=$1 release=$2 timeout=${3:-5m} deploy health
  if ! deploy=$(hub_deployment "$ns" "$release"); then
    warn "no hub Deployment with the labels $(hub_selector "$release") in namespace $ns"
    return 1
  fi
  if ! kubectl --namespace "$ns" rollout status "$deploy" --timeout "$timeout"; then
    warn "the hub ($deploy) is not ready"
    return 1
  fi
  health=$(kubectl --namespace "$ns" get "$deploy" \
    -o jsonpath='{.spec.template.spec.containers[?(@.name=="hub")].startupProbe.httpGet.path}' 2>/dev/null)
  health=${health:-/hub/health}
  if ! kubectl --namespace "$ns" exec "$deploy" -- python3 -c \
      "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8081$health', timeout=10).status == 200 else 1)"; then
    warn "the hub does not answer on $health"
    return 1
  fi
  say "the hub answers on $health"
}

# hub_db_status NAMESPACE RELEASE FILE: the running hub's `teamhub db status --json` into FILE; false when
# the hub cannot be asked (not running, or an image without the db command).
hub_db_status() {
  local ns=$1 release=$2 out=$3 deploy
  deploy=$(hub_deployment "$ns" "$release") || return 1
  kubectl --namespace "$ns" exec "$deploy" -- teamhub db status --json > "$out" 2>/dev/null || true
  grep -q '"head_revision"' "$out" 2>/dev/null
}
