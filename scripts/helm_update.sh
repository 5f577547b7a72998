#!/usr/bin/env bash
# Apply config/values.yaml to the cluster: validate, show what changes, upgrade with automatic rollback.
#
#   scripts/helm_update.sh [--release R] [--namespace N] [--values FILE] [-f EXTRA]... [--timeout D]
#                          [--chart DIR] [--dry-run] [--yes]
#
# Defaults: release teamhub, namespace teamhub, values config/values.yaml, timeout 10m. -f files merge over
# the values in order (like helm -f). --dry-run stops after showing the change. Without --yes it asks before
# changing anything; a run without a terminal and without --yes stops there.
# The chart checks the new hub before anything changes (hub.upgradeCheck); the summary of objects compares
# a server-side dry run with the deployed manifest (hooks and the revision number are not changes).
# Exit: 0 done, 1 upgrade failed (stopped by the check, or rolled back) or hub not answering, 2 usage/tools,
# 3 not confirmed, 4 invalid values.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
require_bash
ROOT=$(repo_root)

usage() { usage_from_header "$0"; }

RELEASE=teamhub NAMESPACE=teamhub VALUES=$ROOT/config/values.yaml TIMEOUT=10m CHART=$ROOT/chart
DRY_RUN=0 ASSUME_YES=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) RELEASE=${2:?--release needs a name}; shift ;;
    --namespace|-n) NAMESPACE=${2:?--namespace needs a name}; shift ;;
    --values) VALUES=${2:?--values needs a file}; shift ;;
    -f) EXTRA+=("${2:?-f needs a file}"); shift ;;
    --timeout) TIMEOUT=${2:?--timeout needs a duration like 10m}; shift ;;
    --chart) CHART=${2:?--chart needs a directory}; shift ;;
    --dry-run) DRY_RUN=1 ;;
    --yes|-y) ASSUME_YES=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" 2 ;;
  esac
  shift
done
export ASSUME_YES

# 1. tools and target
need helm kubectl
find_teamhub
CONTEXT=$(kubectl config current-context 2>/dev/null) || die "kubectl has no current context: point it at the cluster first" 2
HELM_MAJOR=$(helm_major)
say "cluster context: $CONTEXT; release $RELEASE in namespace $NAMESPACE; helm $HELM_MAJOR"

VALUE_FILES=("$VALUES" "${EXTRA[@]}")
HELM_VALUE_ARGS=()
for f in "${VALUE_FILES[@]}"; do
  [ -r "$f" ] || die "cannot read values file $f" 2
  HELM_VALUE_ARGS+=(-f "$f")
done

# 2. validate: invalid values never reach helm
say "validating ${VALUE_FILES[*]}"
set +e
"${TEAMHUB_CMD[@]}" validate "${VALUE_FILES[@]}"
rc=$?
set -e
if [ "$rc" != 0 ]; then
  die "the values are not valid (see above); nothing was sent to the cluster" 4
fi

# 3. what will change
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PREVIOUS=""
if helm status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  helm history "$RELEASE" --namespace "$NAMESPACE" --max 256 -o json > "$WORK/history.json" \
    || die "cannot read the history of release $RELEASE" 1
  PREVIOUS=$("${TEAMHUB_OPS_CMD[@]}" release current "$WORK/history.json")
  say "release $RELEASE is at revision ${PREVIOUS:-?}"
else
  say "release $RELEASE does not exist yet: this will install it"
fi

say "what will change"
if [ -n "$PREVIOUS" ] && helm plugin list 2>/dev/null | awk 'NR > 1 {print $1}' | grep -qx diff; then
  helm diff upgrade "$RELEASE" "$CHART" --namespace "$NAMESPACE" "${HELM_VALUE_ARGS[@]}" --allow-unreleased \
    || warn "helm diff failed; continuing with the summary below"
fi
# Compare like with like. For an existing release the new side is `helm upgrade --dry-run=server`: it renders
# what the upgrade would apply, with the same lookups (the generated secrets keep their deployed values)
# and the same split of hooks (left out, as `helm get manifest` leaves them out). The script needs the
# cluster anyway, so there is no offline guess of which fields are generated. A first install has no old
# side; helm template, for the cluster's Kubernetes version, lists what it adds.
if [ -n "$PREVIOUS" ]; then
  helm upgrade "$RELEASE" "$CHART" --namespace "$NAMESPACE" "${HELM_VALUE_ARGS[@]}" --dry-run=server -o json > "$WORK/new.json" \
    || die "helm cannot render the chart with these values against the cluster; nothing was changed" 4
  helm get manifest "$RELEASE" --namespace "$NAMESPACE" > "$WORK/old.yaml" || die "cannot read the manifest of release $RELEASE" 1
  "${TEAMHUB_OPS_CMD[@]}" release diff "$WORK/old.yaml" "$WORK/new.json" --new-is-release
else
  KUBE_VERSION_ARGS=()
  KUBE_VERSION=$(kubectl version -o json 2>/dev/null | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n 1)
  [ -n "$KUBE_VERSION" ] && KUBE_VERSION_ARGS=(--kube-version "$KUBE_VERSION")
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "${HELM_VALUE_ARGS[@]}" "${KUBE_VERSION_ARGS[@]}" > "$WORK/new.yaml" \
    || die "helm cannot render the chart with these values; nothing was changed" 4
  : > "$WORK/old.yaml"
  "${TEAMHUB_OPS_CMD[@]}" release diff "$WORK/old.yaml" "$WORK/new.yaml"
fi

# the hub database: will the new hub migrate it, and where does the backup go?
if [ -z "$PREVIOUS" ]; then
  say "database: none yet; the hub creates it"
elif hub_db_status "$NAMESPACE" "$RELEASE" "$WORK/db.json"; then
  say "$("${TEAMHUB_OPS_CMD[@]}" db plan --status-json "$WORK/db.json")"
else
  say "database: the running hub could not be asked; if the new hub needs a schema upgrade it backs up the database first"
fi

if [ "$DRY_RUN" = 1 ]; then
  say "dry run: nothing was changed"
  exit 0
fi

# 4. upgrade, waiting, with automatic rollback on failure
if ! confirm "Upgrade release $RELEASE in namespace $NAMESPACE on context $CONTEXT?"; then
  die "not confirmed; nothing was changed" 3
fi
read -r -a ATOMIC <<< "$(helm_atomic_flags)"
say "helm upgrade --install $RELEASE ($(printf '%s ' "${ATOMIC[@]}")--timeout $TIMEOUT)"
set +e
helm upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" --create-namespace \
  "${HELM_VALUE_ARGS[@]}" --timeout "$TIMEOUT" "${ATOMIC[@]}" 2> "$WORK/upgrade.err"
rc=$?
set -e
cat "$WORK/upgrade.err" >&2  # helm writes only warnings and the error there; progress goes to stdout
if [ "$rc" != 0 ]; then
  CHECK_SELECTOR="app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=upgrade-check"
  if grep -Eq 'pre-(upgrade|install) hooks failed' "$WORK/upgrade.err" \
      && kubectl --namespace "$NAMESPACE" get jobs -l "$CHECK_SELECTOR" -o name 2>/dev/null | grep -q .; then
    # The chart's check Job runs before anything of the release changes (chart/templates/hub/upgrade-check.yaml).
    if [ -n "$PREVIOUS" ]; then
      printf '\nERROR: the upgrade of %s was stopped by its pre-upgrade check: the new hub would not start.\n' "$RELEASE" >&2
      printf '       Nothing of the release was changed and the hub of revision %s was not stopped: it kept serving.\n' "$PREVIOUS" >&2
    else
      printf '\nERROR: the install of %s was stopped by its pre-install check: the hub would not start.\n' "$RELEASE" >&2
      printf '       Only the objects of the check were created (its Job is kept for the logs; the next attempt replaces it).\n' >&2
    fi
    printf '       What the check saw (its Job is kept until the next attempt replaces it):\n' >&2
    kubectl --namespace "$NAMESPACE" get pods -l "$CHECK_SELECTOR" -o wide >&2 2>/dev/null || true
    kubectl --namespace "$NAMESPACE" logs -l "$CHECK_SELECTOR" --tail 40 >&2 2>/dev/null || true
    kubectl --namespace "$NAMESPACE" get events --field-selector reason=FailedScheduling -o custom-columns=MESSAGE:.message \
      --no-headers 2>/dev/null | tail -n 3 | sed 's/^/       scheduling: /' >&2 || true
    printf '       Fix the values (e.g. hub.nodeSelector, hub.resources, the hub image) and run this again.\n' >&2
    exit 1
  fi
  if [ -n "$PREVIOUS" ]; then
    NOW=""
    if helm history "$RELEASE" --namespace "$NAMESPACE" --max 256 -o json > "$WORK/after.json" 2>/dev/null; then
      NOW=$("${TEAMHUB_OPS_CMD[@]}" release current "$WORK/after.json")
    fi
    printf '\nERROR: the upgrade of %s failed and helm rolled it back automatically.\n' "$RELEASE" >&2
    if [ -z "$NOW" ] || [ "$NOW" = "$PREVIOUS" ]; then
      printf '       helm reports revision %s as the deployed one.\n' "$PREVIOUS" >&2
    else
      printf '       helm redeployed what revision %s ran, as revision %s.\n' "$PREVIOUS" "$NOW" >&2
    fi
    # Say what is true now, not what should be: the hub (Recreate) was stopped for the new one.
    if check_hub "$NAMESPACE" "$RELEASE" 2m >/dev/null 2>&1; then
      printf '       The previous hub is running again and answers; it was down while helm waited for the new one (up to --timeout %s).\n' "$TIMEOUT" >&2
    else
      printf '       The hub is NOT answering yet: check kubectl --namespace %s get pods -l %s\n' "$NAMESPACE" "$(hub_selector "$RELEASE")" >&2
    fi
    DB_BEFORE=$(sed -n 's/.*"revision": *"\([^"]*\)".*/\1/p' "$WORK/db.json" 2>/dev/null | head -n 1)
    if [ -n "$DB_BEFORE" ] && hub_db_status "$NAMESPACE" "$RELEASE" "$WORK/db-after.json" \
        && ! grep -q "\"revision\": *\"$DB_BEFORE\"" "$WORK/db-after.json"; then
      printf '       The new hub had already migrated the hub database before the failure; a backup was taken first.\n' >&2
      printf '       Restore it with: scripts/rollback.sh --list, then see docs/architecture.md (teamhub db restore).\n' >&2
    else
      printf '       The hub database was not touched: helm does not change it, and the hub migrates its schema only\n' >&2
      printf '       when a new JupyterHub version starts, after taking a backup (see docs/architecture.md).\n' >&2
    fi
    printf '       Look at the cause with: kubectl --namespace %s get events --sort-by=.lastTimestamp\n' "$NAMESPACE" >&2
  else
    printf '\nERROR: the first install of %s failed and helm removed what it had created.\n' "$RELEASE" >&2
    printf '       No hub database existed before, so nothing was lost.\n' >&2
  fi
  exit 1
fi

# 5. check the hub, report
helm history "$RELEASE" --namespace "$NAMESPACE" --max 256 -o json > "$WORK/history.json"
NEW=$("${TEAMHUB_OPS_CMD[@]}" release current "$WORK/history.json")
say "release $RELEASE is now at revision ${NEW:-?}"
HUB_OK=1
check_hub "$NAMESPACE" "$RELEASE" "$TIMEOUT" || HUB_OK=0
if [ -n "$PREVIOUS" ]; then
  say "to undo this upgrade: scripts/rollback.sh --release $RELEASE --namespace $NAMESPACE --revision $PREVIOUS"
  note "(plain helm: helm rollback $RELEASE $PREVIOUS --namespace $NAMESPACE $(helm_wait_flag))"
fi
if [ "$HUB_OK" = 0 ]; then
  die "the upgrade finished but the hub is not answering; check 'kubectl --namespace $NAMESPACE logs -l $(hub_selector "$RELEASE")' or roll back with the command above" 1
fi
