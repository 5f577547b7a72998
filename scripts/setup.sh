#!/usr/bin/env bash
# Bring this machine to a state where `make test` and `make demo` work, installing everything pinned
# into ignored folders (.venv/, .tools/, node_modules/). Idempotent: each step is skipped when a stamp
# shows its inputs have not changed, so a second run takes seconds.
#
# `setup.sh --demo` (make setup-demo, what `make demo` runs) installs only what the demo needs: the hub's
# Python venv and the Node proxy. Everything else here is for `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_ONLY=0
case "${1:-}" in
  --demo) DEMO_ONLY=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--demo]" >&2; exit 2 ;;
esac
ROOT=$PWD
TOOLS=$ROOT/.tools
STAMPS=$TOOLS/stamps
mkdir -p "$TOOLS/bin" "$STAMPS"

HELM3_VERSION=v3.21.3
HELM4_VERSION=v4.3.1
# The cluster tier's control plane (tests/cluster/), each built from its Go module.
ETCD_VERSION=v3.7.3
KUBERNETES_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
GATEWAY_API_VERSION=v1.6.3  # the Gateway API CRDs (standard channel) the HTTPRoute test installs
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
# The containers tier (tests/containers/): image builds without a Docker daemon, and a real kubelet's runtime.
# The bundle tier (tests/bundle/): real registries on loopback (docker-registry is distribution 2.8) and
# skopeo, the benchmark's baseline (benchmarks/bundle_bench.py).
for pkg in chromium postgresql git buildah podman runc mmdebstrap containerd conmon containernetworking-plugins uidmap \
           docker-registry skopeo; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_needed+=("$pkg")
done
if [ ${#apt_needed[@]} -gt 0 ] && [ "$DEMO_ONLY" = 0 ]; then
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

# --- Node: configurable-http-proxy (the proxy the chart runs) and oidc-provider (a real OpenID provider for tests)
if fresh node package.json package-lock.json; then
  say "installing the Node tools: configurable-http-proxy, oidc-provider for the tests (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  stamp node
fi

if [ "$DEMO_ONLY" = 1 ]; then
  say "demo setup complete (make setup installs the test tools too)"
  exit 0
fi

# Go builds below run one at a time with at most two compile jobs: the machine's cores are shared.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=2"

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

# --- The cluster tier: etcd, the Kubernetes control plane, kubectl and kwok -------------------------
# kubelet: the containers tier's real node (tests/containers/), from the same module and version.
KUBE_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)

# kube_wrapper_mod <version>: the go.mod of tools/kubernetes for k8s.io/kubernetes@<version>. Kubernetes
# requires its staging modules at v0.0.0 and maps them to ./staging/... in its own go.mod; as a dependency
# each needs `replace k8s.io/<name> => k8s.io/<name> v0.<minor>.<patch>`. The list is read from the
# downloaded go.mod, so a version bump that adds or removes a staging module needs no hand edit.
kube_wrapper_mod() {
  local version=$1 mod staging tool
  mod=$(cd / && go mod download -json "k8s.io/kubernetes@$version" \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$mod" ] || { echo "setup: cannot download k8s.io/kubernetes@$version" >&2; exit 1; }
  staging=$(sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*|\1|p' "$mod" | sort)
  [ -n "$staging" ] || { echo "setup: no ./staging replace lines in $mod" >&2; exit 1; }
  echo "// Generated by scripts/setup.sh (kube_wrapper_mod) from k8s.io/kubernetes@$version's go.mod: do not edit."
  echo "// Builds the control plane and kubectl for tests/cluster/, kubelet for tests/containers/. Change KUBERNETES_VERSION in setup.sh instead."
  echo "module teamhub.local/tools/kubernetes"
  echo
  grep -E '^go [0-9]' "$mod"
  echo
  grep -E '^godebug ' "$mod" || true
  echo
  echo "tool ("
  for tool in "${KUBE_TOOLS[@]}"; do printf '\tk8s.io/kubernetes/cmd/%s\n' "$tool"; done
  echo ")"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  for name in $staging; do printf '\t%s => %s v0.%s\n' "$name" "$name" "${version#v1.}"; done
  echo ")"
}

# The wrapper's go.mod and go.sum are committed (go.sum pins every module's hash for review and for
# offline rebuilds); they are regenerated here only when KUBERNETES_VERSION no longer matches them.
listed() { local t; for t in "${KUBE_TOOLS[@]}"; do grep -q "k8s.io/kubernetes/cmd/$t\$" tools/kubernetes/go.mod || return 1; done; }
if ! grep -Eq "^(require |[[:space:]]+)k8s\.io/kubernetes $KUBERNETES_VERSION( |\$)" tools/kubernetes/go.mod 2>/dev/null || ! listed; then
  say "generating tools/kubernetes/go.mod for k8s.io/kubernetes $KUBERNETES_VERSION"
  mkdir -p tools/kubernetes
  kube_wrapper_mod "$KUBERNETES_VERSION" > tools/kubernetes/go.mod.new
  mv tools/kubernetes/go.mod.new tools/kubernetes/go.mod
  rm -f tools/kubernetes/go.sum
  (cd tools/kubernetes && go mod tidy)
fi

missing() { local t; for t in "$@"; do [ -x "$TOOLS/bin/$t" ] || return 0; done; return 1; }

if fresh kubernetes tools/kubernetes/go.mod tools/kubernetes/go.sum || missing "${KUBE_TOOLS[@]}"; then
  say "building ${KUBE_TOOLS[*]} $KUBERNETES_VERSION (~5 min, ~3 GB of memory)"
  # Without the stamp the server reports v0.0.0-master+$Format:%H$ and Helm's kubeVersion checks fail.
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  (cd tools/kubernetes && go build -trimpath -ldflags "$ldflags" -o "$TOOLS/bin/" \
     "${KUBE_TOOLS[@]/#/k8s.io/kubernetes/cmd/}")
  [ -f "$STAMPS/kubernetes.new" ] && stamp kubernetes
fi

# etcd: go.etcd.io/etcd/server/v3's module root is `package main`, and its go.mod replaces its sibling
# modules with ../ paths, which `go install pkg@version` refuses; a throwaway wrapper module requires it.
if fresh etcd <(echo "$ETCD_VERSION") || missing etcd; then
  say "building etcd $ETCD_VERSION from its Go module"
  wrapper=$(mktemp -d)
  (cd "$wrapper" && go mod init teamhub.local/tools/etcd >/dev/null 2>&1 \
     && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null \
     && go build -trimpath -ldflags "-s -w" -o "$TOOLS/bin/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$wrapper"
  [ -f "$STAMPS/etcd.new" ] && stamp etcd
fi

# kwok runs no stages of its own when started standalone: the tier passes the stage configs from the
# module's kustomize/stage/ explicitly, so they are copied next to the binary, matching its version.
if fresh kwok <(echo "$KWOK_VERSION") || missing kwok || [ ! -d "$TOOLS/kwok-stages" ]; then
  say "building kwok $KWOK_VERSION from its Go module"
  GOBIN=$TOOLS/bin go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$TOOLS/kwok-stages"
  mkdir -p "$TOOLS/kwok-stages"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
               pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    install -m 0644 "$src/kustomize/stage/$stage.yaml" "$TOOLS/kwok-stages/"
  done
  [ -f "$STAMPS/kwok.new" ] && stamp kwok
fi

# The Gateway API's standard-channel CRDs, from its Go module: the cluster tier installs them to show the
# chart's HTTPRoute is accepted where gateway.networking.k8s.io/v1 is served (tests/cluster/test_httproute.py).
if fresh gateway-api <(echo "$GATEWAY_API_VERSION") || [ ! -d "$TOOLS/gateway-api-crds" ]; then
  say "fetching the Gateway API $GATEWAY_API_VERSION CRDs from its Go module"
  src=$(cd / && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$TOOLS/gateway-api-crds"
  mkdir -p "$TOOLS/gateway-api-crds"
  # only the CustomResourceDefinitions (the folder also holds an admission policy)
  grep -l '^kind: CustomResourceDefinition' "$src"/config/crd/standard/*.yaml \
    | xargs -I{} install -m 0644 {} "$TOOLS/gateway-api-crds/"
  [ -f "$STAMPS/gateway-api.new" ] && stamp gateway-api
fi

# --- The containers tier: a stand-in base image and a pause binary ----------------------------------
# Registries are out of reach, so `FROM python:3.11.11-slim-bookworm` gets a local stand-in made from Debian's
# packages (Python 3.11 in /usr/bin instead of /usr/local/bin; the Dockerfiles build unchanged on it), kept
# in the tier's own image storage under .tools/containers (never the machine's /var/lib/containers).
CONTAINERS=$TOOLS/containers
STANDIN_BASE=docker.io/library/python:3.11.11-slim-bookworm
STANDIN_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates,netbase,tzdata
mkdir -p "$CONTAINERS"
cat > "$CONTAINERS/storage.conf" <<CONF
# Written by scripts/setup.sh: the containers tier's image storage (buildah, podman), inside .tools.
[storage]
driver = "overlay"
graphroot = "$CONTAINERS/storage"
runroot = "$CONTAINERS/run"
CONF
if fresh standin-base <(echo "$STANDIN_BASE $STANDIN_PACKAGES") /etc/apt/sources.list.d/debian.sources \
   || ! CONTAINERS_STORAGE_CONF=$CONTAINERS/storage.conf buildah inspect --type image "$STANDIN_BASE" >/dev/null 2>&1; then
  say "making the stand-in $STANDIN_BASE from Debian packages (mmdebstrap, ~1 min)"
  sources=/etc/apt/sources.list.d/debian.sources
  [ -f "$sources" ] || sources=/etc/apt/sources.list
  rm -f "$CONTAINERS/standin-base.tar"
  mmdebstrap --quiet --variant=minbase --include="$STANDIN_PACKAGES" bookworm "$CONTAINERS/standin-base.tar" "$sources"
  CONTAINERS_STORAGE_CONF=$CONTAINERS/storage.conf podman import --quiet \
    --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' "$CONTAINERS/standin-base.tar" "$STANDIN_BASE" >/dev/null
  rm -f "$CONTAINERS/standin-base.tar"
  [ -f "$STAMPS/standin-base.new" ] && stamp standin-base
fi

# The pod sandbox's pause process: a static binary from tools/pause (the upstream image is out of reach).
if fresh pause tools/pause/go.mod tools/pause/main.go || missing pause; then
  say "building the pause binary (tools/pause)"
  (cd tools/pause && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$TOOLS/bin/pause" .)
  [ -f "$STAMPS/pause.new" ] && stamp pause
fi

# --- Kueue (issue 26): the queue manager the cluster tier runs beside the control plane ------------
# Built from its Go module like kwok. The visibility server writes its certificate to a hard-coded
# /visibility unless certDir is overridden: a relative folder, inside the tier's working directory.
# The module's own chart (CRDs with their conversion stanzas, webhooks, APIServices, RBAC) is copied next
# to the binary: the tier renders it with `helm template`, matching the binary's version.
KUEUE_VERSION=v0.17.0
if fresh kueue <(echo "$KUEUE_VERSION") || missing kueue || [ ! -d "$TOOLS/kueue-chart" ]; then
  say "building kueue $KUEUE_VERSION from its Go module (~6 min)"
  GOBIN=$TOOLS/bin go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/visibility.certDir=visibility-certs" \
    "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
  src=$(go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$TOOLS/kueue-chart"
  cp -R "$src/charts/kueue" "$TOOLS/kueue-chart"
  chmod -R u+w "$TOOLS/kueue-chart"
  [ -f "$STAMPS/kueue.new" ] && stamp kueue
fi

# --- Air-gapped bundles (issue 29): crane makes every registry request of `teamhub bundle` ---------
CRANE_VERSION=v0.22.1
if fresh crane <(echo "$CRANE_VERSION") || missing crane; then
  say "building crane $CRANE_VERSION from its Go module (~1 min)"
  GOBIN=$TOOLS/bin go install -trimpath -ldflags "-s -w" "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
  [ -f "$STAMPS/crane.new" ] && stamp crane
fi
# bundle push: tools/bundle-push, the same library at the same version (tools/bundle-push/go.mod), sends each
# blob once and has the registry mount it into the other repositories (crane pushes a layout image by image)
if fresh bundle-push tools/bundle-push/go.mod tools/bundle-push/go.sum tools/bundle-push/main.go || missing bundle-push; then
  say "building bundle-push (tools/bundle-push)"
  (cd tools/bundle-push && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$TOOLS/bin/bundle-push" .)
  [ -f "$STAMPS/bundle-push.new" ] && stamp bundle-push
fi

# --- GPU-aware culling (issue 28): a real Prometheus for the cluster tier's GPU-use tests ------------
# The Go module numbers Prometheus v3.X.Y as v0.3XX.Y. Its go.mod has a replace directive, which
# `go install pkg@version` refuses: a throwaway wrapper module requires it and repeats the replace lines.
# Service discovery is left out (remove_all_sd; the tests scrape static targets) and so are the web UI's
# assets (the builtinassets tag): only the HTTP API is used. The version is stamped as the release does.
PROMETHEUS_VERSION=v0.315.1
PROMETHEUS_RELEASE=3.15.1
if fresh prometheus <(echo "$PROMETHEUS_VERSION $PROMETHEUS_RELEASE") || missing prometheus; then
  say "building prometheus $PROMETHEUS_RELEASE from its Go module (~4 min)"
  mod=$(cd / && go mod download -json "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$mod" ] || { echo "setup: cannot download github.com/prometheus/prometheus@$PROMETHEUS_VERSION" >&2; exit 1; }
  wrapper=$(mktemp -d)
  (cd "$wrapper" && go mod init teamhub.local/tools/prometheus >/dev/null 2>&1 \
     && { grep -E '^replace [^ ]+ => [^ .][^ ]* v' "$mod" >> go.mod || true; } \
     && go get "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" >/dev/null \
     && go build -trimpath -tags remove_all_sd \
          -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE" \
          -o "$TOOLS/bin/prometheus" github.com/prometheus/prometheus/cmd/prometheus)
  rm -rf "$wrapper"
  [ -f "$STAMPS/prometheus.new" ] && stamp prometheus
fi

say "setup complete"
