#!/bin/bash
# Installs what Flotilla's build, run and tests need on a fresh Debian 12
# (as root): missing apt packages, and Go tools at pinned versions into
# .tools/ of this checkout. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
export PATH=/usr/local/go/bin:$TOOLS/bin:$PATH
export GOFLAGS=-buildvcs=false

APT_PACKAGES=(
	runc containernetworking-plugins iproute2 iptables conntrack
	docker-registry skopeo umoci busybox catatonit
	nats-server protobuf-compiler apache2-utils make
	containerd
	gcc libc6-dev libseccomp-dev pkg-config
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "install-deps: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-registry's package may start a registry on :5000; tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
	systemctl stop docker-registry || true
fi

# Go tools, pinned. Each is installed once into .tools/bin.
PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.5.1
CRI_TOOLS=v1.37.0
CNI_PLUGINS=v1.10.0
mkdir -p "$TOOLS/bin" "$TOOLS/cni"
stamp() { [ -f "$TOOLS/.$1-$2" ]; }
mark() { touch "$TOOLS/.$1-$2"; }
goinstall() { # name version pkg
	if ! stamp "$1" "$2"; then
		echo "install-deps: go install $3@$2"
		GOBIN=$TOOLS/bin go install "$3@$2"
		mark "$1" "$2"
	fi
}
goinstall protoc-gen-go $PROTOC_GEN_GO google.golang.org/protobuf/cmd/protoc-gen-go
goinstall protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC google.golang.org/grpc/cmd/protoc-gen-go-grpc
goinstall crictl $CRI_TOOLS sigs.k8s.io/cri-tools/cmd/crictl

# critest is a test binary of the cri-tools module.
if ! stamp critest $CRI_TOOLS; then
	echo "install-deps: build critest $CRI_TOOLS"
	tmp=$(mktemp -d)
	(cd "$tmp" && go mod init critest-build >/dev/null 2>&1 &&
		go get -t sigs.k8s.io/cri-tools/cmd/critest@$CRI_TOOLS >/dev/null 2>&1 &&
		go test -c -o "$TOOLS/bin/critest" sigs.k8s.io/cri-tools/cmd/critest)
	rm -rf "$tmp"
	mark critest $CRI_TOOLS
fi

# CNI plugins: Debian's 1.1.1 fail CHECK and speak CNI <= 1.0, so the tests
# use upstream's at a pinned version, built from the module proxy. Static
# (CGO_ENABLED=0), as upstream's release binaries are: a cgo build starts
# through the dynamic loader, about 1 ms more CPU at every plugin call.
if ! stamp cni-plugins-static $CNI_PLUGINS; then
	echo "install-deps: CNI plugins $CNI_PLUGINS"
	for p in main/bridge main/loopback main/ptp main/host-device ipam/host-local meta/portmap meta/bandwidth meta/firewall meta/tuning; do
		CGO_ENABLED=0 GOBIN=$TOOLS/cni go install -trimpath "github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS"
	done
	mark cni-plugins-static $CNI_PLUGINS
fi
echo "install-deps: ok"
