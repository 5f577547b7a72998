#!/usr/bin/env bash
# Roll the release back, and check the hub answers. Default target: the newest earlier revision that was
# deployed successfully (deployed or superseded) and deploys something other than what runs now (after a
# failed upgrade that helm rolled back: neither the failed revision nor the one the rollback redeployed). When
# the newest revision failed (a plain `helm upgrade --wait` that timed out, its objects applied), the newest
# revision deployed successfully, and the script says so. A failed revision is a target only when named,
# after a warning.
#
#   scripts/rollback.sh [--release R] [--namespace N] [--revision REV | REV] [--list] [--timeout D]
#                       [--no-restore] [--dry-run] [--yes]
#
# Lists the history first, with what each revision changed (chart version, image tags). --list stops
# there; --dry-run also shows the chosen target and stops. A revision that does not exist is refused.
# When the target runs an older JupyterHub than the one that last migrated the hub database, the matching
# backup is shown and restored as part of the rollback (the newer database is kept beside it);
# --no-restore skips that.
# Exit: 0 done, 1 rollback failed or hub not answering, 2 usage/tools, 3 not confirmed, 5 no such revision.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
require_bash

usage() { usage_from_header "$0"; }

RELEASE=teamhub NAMESPACE=teamhub TIMEOUT=10m REVISION="" LIST_ONLY=0 DRY_RUN=0 ASSUME_YES=0 RESTORE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --release) RELEASE=${2:?--release needs a name}; shift ;;
    --namespace|-n) NAMESPACE=${2:?--namespace needs a name}; shift ;;
    --revision) REVISION=${2:?--revision needs a number}; shift ;;
    --timeout) TIMEOUT=${2:?--timeout needs a duration}; shift ;;
    --list) LIST_ONLY=1 ;;
    --no-restore) RESTORE=0 ;;
    --dry-run) DRY_RUN=1 ;;
    --yes|-y) ASSUME_YES=1 ;;
    -h|--help) usage; exit 0 ;;
    [0-9]*) REVISION=$1 ;;
    *) usage >&2; die "unknown argument $1" 2 ;;
  esac
  shift
done
export ASSUME_YES
case "$REVISION" in ""|*[!0-9]*) [ -z "$REVISION" ] || die "revision must be a number, not '$REVISION'" 2 ;; esac

need helm kubectl
find_teamhub
CONTEXT=$(kubectl config current-context 2>/dev/null) || die "kubectl has no current context: point it at the cluster first" 2
say "cluster context: $CONTEXT; release $RELEASE in namespace $NAMESPACE"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
helm history "$RELEASE" --namespace "$NAMESPACE" --max 256 -o json > "$WORK/history.json" \
  || die "release $RELEASE was not found in namespace $NAMESPACE" 2
mkdir "$WORK/values"
SHOW=20  # revisions listed (their values are read one by one); every revision can still be the target
for rev in $("${TEAMHUB_OPS_CMD[@]}" release numbers "$WORK/history.json" --last $((SHOW + 1))); do
  helm get values "$RELEASE" --namespace "$NAMESPACE" --revision "$rev" -o yaml > "$WORK/values/$rev.yaml" 2>/dev/null \
    || : > "$WORK/values/$rev.yaml"
done
say "history of $RELEASE"
"${TEAMHUB_OPS_CMD[@]}" release history "$WORK/history.json" "$WORK/values" --last "$SHOW"
[ "$LIST_ONLY" = 1 ] && exit 0

CURRENT=$("${TEAMHUB_OPS_CMD[@]}" release current "$WORK/history.json")
TARGET_ARGS=()
[ -n "$REVISION" ] && TARGET_ARGS=(--revision "$REVISION")
# default: the newest earlier revision that was deployed successfully and differs from the current one; a
# failed one only when named, after the warning the helper prints (kept for the question below)
TARGET=$("${TEAMHUB_OPS_CMD[@]}" release target "$WORK/history.json" "$WORK/values" "${TARGET_ARGS[@]}" 2> "$WORK/target.err") \
  || { cat "$WORK/target.err" >&2; die "nothing was changed" 5; }
TARGET_WARNING=$(sed -n 's/^WARNING: //p' "$WORK/target.err")
[ -z "$TARGET_WARNING" ] || warn "$TARGET_WARNING"
TARGET_NOTE=$(sed -n 's/^NOTE: //p' "$WORK/target.err")  # the newest revision failed: back to the last good one
if [ -n "$TARGET_NOTE" ]; then
  say "$TARGET_NOTE"
else
  say "roll back from revision $CURRENT to revision $TARGET"
fi

# the hub database: does the target's JupyterHub fit the schema, or does a backup have to come back?
BACKUP=""
if hub_db_status "$NAMESPACE" "$RELEASE" "$WORK/db.json"; then
  say "$("${TEAMHUB_OPS_CMD[@]}" db rollback-plan --status-json "$WORK/db.json" --target "$TARGET")"
  BACKUP=$("${TEAMHUB_OPS_CMD[@]}" db rollback-plan --status-json "$WORK/db.json" --target "$TARGET" --backup-only)
  if [ -n "$BACKUP" ] && [ "$RESTORE" = 0 ]; then
    warn "--no-restore: the hub of revision $TARGET will refuse the newer database until a backup is restored"
    BACKUP=""
  fi
else
  warn "the running hub could not be asked about its database; if the old hub refuses it, restore a backup with: kubectl --namespace $NAMESPACE exec deployment/<hub> -- teamhub db restore NAME --now (find <hub> with: kubectl --namespace $NAMESPACE get deployment -l $(hub_selector "$RELEASE"))"
fi

if [ "$DRY_RUN" = 1 ]; then
  say "dry run: nothing was changed"
  exit 0
fi
QUESTION="Roll $RELEASE back to revision $TARGET on context $CONTEXT"
[ -n "$BACKUP" ] && QUESTION="$QUESTION, restoring the database backup $BACKUP"
[ -n "$TARGET_WARNING" ] && QUESTION="$QUESTION, although $TARGET_WARNING"
if ! confirm "$QUESTION?"; then
  die "not confirmed; nothing was changed" 3
fi
if [ -n "$BACKUP" ]; then
  # The running (newer) hub schedules the restore; the target's hub applies it when it starts, after
  # the newer hub has stopped, and keeps the newer database beside it.
  HUB=$(hub_deployment "$NAMESPACE" "$RELEASE") || die "no hub Deployment with the labels $(hub_selector "$RELEASE"); nothing was rolled back" 1
  kubectl --namespace "$NAMESPACE" exec "$HUB" -- teamhub db restore "$BACKUP" \
    || die "could not schedule the restore of $BACKUP; nothing was rolled back" 1
  say "the restore of $BACKUP is scheduled for the start of revision $TARGET's hub"
fi

read -r -a WAIT <<< "$(helm_wait_flag)"
if ! helm rollback "$RELEASE" "$TARGET" --namespace "$NAMESPACE" --timeout "$TIMEOUT" "${WAIT[@]}"; then
  if [ -n "$BACKUP" ]; then
    kubectl --namespace "$NAMESPACE" exec "$HUB" -- teamhub db restore --cancel >/dev/null 2>&1 \
      || warn "could not cancel the scheduled restore: run 'teamhub db restore --cancel' in the hub pod"
  fi
  die "helm rollback to revision $TARGET failed; the release history above shows what is deployed (helm history $RELEASE --namespace $NAMESPACE)" 1
fi
NEW=$(helm history "$RELEASE" --namespace "$NAMESPACE" --max 1 -o json > "$WORK/after.json" && "${TEAMHUB_OPS_CMD[@]}" release current "$WORK/after.json" || true)
say "rolled back: revision ${NEW:-?} now runs what revision $TARGET ran"
check_hub "$NAMESPACE" "$RELEASE" "$TIMEOUT" || die "the rollback finished but the hub is not answering; check 'kubectl --namespace $NAMESPACE logs -l $(hub_selector "$RELEASE")'" 1
note "to return to where you were: scripts/rollback.sh --release $RELEASE --namespace $NAMESPACE --revision $CURRENT"
