#!/usr/bin/env bash
# Build (and push) the images listed in dockerfiles/images.yaml with immutable, content-derived tags, then
# record each tag in config/values.yaml (comments kept) so the next scripts/helm_update.sh deploys it.
# --push also records the digest the registry returned (`digest: sha256:...` beside `tag`); a build
# without --push drops a digest left from an earlier push, since it names another image.
#
#   scripts/build_images.sh [NAME...] [--push] [--dry-run] [--values FILE] [--manifest FILE]
#
# NAME: images to build (default: all); the bases they build on come first. Builder: docker when its daemon
# answers (`docker info`), else buildah, else podman; BUILD_ENGINE=... chooses. Tag: <last commit of the
# context>-<content hash>. --dry-run prints what would run and changes nothing.
# Platforms: those of the manifest this machine can run (its own, plus binfmt_misc emulation); a tag of a
# narrower build names them (`-amd64`). BUILD_PLATFORMS=all|runnable|linux/amd64,... overrides (default runnable).
# buildah/podman: the host's CA bundle and pip.conf are bound read-only into the build (a site's TLS-inspecting
# proxy), never copied into an image; BUILD_CA_FILE / BUILD_PIP_CONF choose other files, empty turns them off.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
require_bash
ROOT=$(repo_root)

usage() { usage_from_header "$0"; }

PUSH=0 DRY_RUN=0 VALUES=$ROOT/config/values.yaml MANIFEST=$ROOT/dockerfiles/images.yaml
NAMES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --push) PUSH=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --values) VALUES=${2:?--values needs a file}; shift ;;
    --manifest) MANIFEST=${2:?--manifest needs a file}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" 2 ;;
    *) NAMES+=("$1") ;;
  esac
  shift
done

ENGINE=${BUILD_ENGINE:-}
if [ -z "$ENGINE" ]; then
  # A Docker CLI without a daemon is common (CI images, rootless machines): only a daemon that answers counts.
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker
  else
    for candidate in buildah podman; do
      if command -v "$candidate" >/dev/null 2>&1; then ENGINE=$candidate; break; fi
    done
  fi
fi
if [ -z "$ENGINE" ]; then
  [ "$DRY_RUN" = 1 ] || die "no image builder found: install docker, podman or buildah" 2
  ENGINE=docker
fi
find_teamhub

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The commands come as NUL-separated argv files (no shell quoting to undo, so no eval).
MOUNTS=()
CA_FILE=${BUILD_CA_FILE-/etc/ssl/certs/ca-certificates.crt}
PIP_CONF=${BUILD_PIP_CONF-/etc/pip.conf}
if [ -n "$CA_FILE" ] && [ -f "$CA_FILE" ]; then MOUNTS+=(--mount "$CA_FILE:/etc/ssl/certs/ca-certificates.crt"); fi
if [ -n "$PIP_CONF" ] && [ -f "$PIP_CONF" ]; then MOUNTS+=(--mount "$PIP_CONF:/etc/pip.conf"); fi
PLAN=$("${TEAMHUB_OPS_CMD[@]}" images plan "${NAMES[@]}" --engine "$ENGINE" --manifest "$MANIFEST" --argv-dir "$WORK" \
       --platforms "${BUILD_PLATFORMS:-runnable}" "${MOUNTS[@]}") \
  || die "cannot plan the build from $MANIFEST" 2

say "builder: $ENGINE; values file: $VALUES$([ "$DRY_RUN" = 1 ] && echo ' (dry run: nothing is built or changed)')"
while IFS=$'\t' read -r key ref tag targets build push; do
  [ -n "$key" ] || continue
  case "$tag" in ""|latest) die "$key: refusing tag '$tag'" ;; esac
  say "$key -> $ref"
  mapfile -d '' -t build_cmd < "$WORK/$key.build"
  mapfile -d '' -t push_cmd < "$WORK/$key.push"
  DIGEST_ARGS=()
  if [ "$DRY_RUN" = 1 ]; then
    note "would run: $build"
    [ "$PUSH" = 1 ] && note "would run: $push"
  else
    "${build_cmd[@]}" || die "$key: the build failed; values were not changed"
    if [ "$PUSH" = 1 ]; then
      "${push_cmd[@]}" | tee "$WORK/$key.push.log" || die "$key: the push failed; values were not changed"
      # the digest the registry gave this push: recorded beside the tag, so nodes pull exactly this image
      DIGEST=$("${TEAMHUB_OPS_CMD[@]}" images digest "$key" --argv-dir "$WORK") \
        || die "$key: pushed, but the push reported no digest; values were not changed"
      DIGEST_ARGS=(--digest "$DIGEST")
    fi
  fi
  if [ "$targets" != "-" ]; then
    IFS=',' read -r -a paths <<< "$targets"
    for path in "${paths[@]}"; do
      if [ "$DRY_RUN" = 1 ]; then
        note "would set $path.tag = \"$tag\"$([ "$PUSH" = 1 ] && echo " and $path.digest (from the push)") in $VALUES"
      else
        "${TEAMHUB_OPS_CMD[@]}" set-image-tag --values "$VALUES" --name "${ref%:*}" "${DIGEST_ARGS[@]}" "$path" "$tag" \
          || die "$key: built, but $VALUES could not be updated"
      fi
    done
  fi
done <<< "$PLAN"

if [ "$DRY_RUN" = 0 ]; then
  if [ "$PUSH" = 0 ]; then
    say "built locally; run again with --push before deploying (nodes pull from the registry)"
  else
    say "pushed; deploy with: scripts/helm_update.sh"
  fi
fi
