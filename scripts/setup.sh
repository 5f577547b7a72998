#!/usr/bin/env bash
# Bring this machine to a state where `make test` and `make demo` work, installing everything pinned
# into ignored folders (.venv/, .tools/, node_modules/). Idempotent: each step is skipped when a stamp
# shows its inputs have not changed, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
STAMPS=$TOOLS/stamps
mkdir -p "$TOOLS/bin" "$STAMPS"

HELM3_VERSION=v3.21.3
HELM4_VERSION=v4.3.1
PYTHON=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }

# fresh <name> <inputs...>: true when the stamp for <name> does not match the inputs' content.
fresh() {
  local name=$1; shift
  local sum
  sum=$(cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ -f "$STAMPS/$name" ] && [ "$(cat "$STAMPS/$name")" = "$sum" ] && return 1
  echo "$sum" > "$STAMPS/$name.new"
  return 0
}
stamp() { mv "$STAMPS/$1.new" "$STAMPS/$1"; }

# --- Debian packages: a browser for the browser tests, PostgreSQL for the database tests ------------
apt_needed=()
for pkg in chromium postgresql git; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_needed+=("$pkg")
done
if [ ${#apt_needed[@]} -gt 0 ]; then
  say "installing Debian packages: ${apt_needed[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
fi

# --- Python: the hub's own pinned lock plus the test tools ---------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
if fresh python hub-image/requirements.txt requirements-dev.txt hub-image/pyproject.toml; then
  say "installing Python packages (pinned)"
  .venv/bin/pip install -q --disable-pip-version-check -r hub-image/requirements.txt -r requirements-dev.txt
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e hub-image
  stamp python
fi

# --- Node: configurable-http-proxy, the same proxy the chart runs --------------------------------
if fresh node package.json package-lock.json; then
  say "installing configurable-http-proxy (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  stamp node
fi

# --- Go tools: helm 3 and 4 and helm-unittest, built from their modules at pinned versions --------
build_helm() {  # build_helm <module major> <version> <output name> [extra -X flags...]
  local major=$1 version=$2 out=$3
  shift 3
  if [ -x "$TOOLS/bin/$out" ] && "$TOOLS/bin/$out" version --short 2>/dev/null | grep -q "^$version"; then
    return 0
  fi
  say "building $out $version from its Go module"
  # The release Makefile stamps the version (and, for Helm 3, the default Kubernetes version that
  # `helm template` assumes) with -X; `go install` alone would report "v3.21" and assume Kubernetes 1.20.
  local gobin ldflags="-X helm.sh/helm/$major/internal/version.version=$version"
  local flag
  for flag in "$@"; do ldflags+=" -X helm.sh/helm/$major/$flag"; done
  gobin=$(mktemp -d)
  GOBIN=$gobin GOFLAGS=-mod=mod go install -ldflags "$ldflags" "helm.sh/helm/$major/cmd/helm@$version"
  mv "$gobin/helm" "$TOOLS/bin/$out"
  rmdir "$gobin"
}
# Helm 3.21 is built against Kubernetes 1.36 client libraries; that is also its default --kube-version.
build_helm v3 "$HELM3_VERSION" helm \
  pkg/chartutil.k8sVersionMajor=1 pkg/chartutil.k8sVersionMinor=36 \
  pkg/lint/rules.k8sVersionMajor=1 pkg/lint/rules.k8sVersionMinor=36
build_helm v4 "$HELM4_VERSION" helm4

if fresh helm-unittest tools/helm-unittest/go.mod tools/helm-unittest/go.sum || [ ! -x "$TOOLS/bin/helm-unittest" ]; then
  say "building helm-unittest from tools/helm-unittest/go.mod"
  (cd tools/helm-unittest && go build -o "$TOOLS/bin/helm-unittest" github.com/helm-unittest/helm-unittest/cmd/helm-unittest)
  [ -f "$STAMPS/helm-unittest.new" ] && stamp helm-unittest
fi

say "setup complete"
