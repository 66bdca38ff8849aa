#!/bin/bash
# bench.sh: the benchmark of issue 6 (`make bench`). In one run, on this machine: starts the local test
# registry (lib/testutil/registry), a Flotilla fleet (bin/flotctl up) and Debian's containerd with its CRI
# plugin (temp root, state, socket, CNI conf), measures both with flotbench, measures the floor (bare runc
# create+start, netns + CNI ADD), prints the ratio table and writes JSON under _output/bench/<time>/.
# Then runs imaged's pull benchmark. Everything it starts is stopped and removed at exit (also on Ctrl-C).
#
# Env: BENCH_TARGETS="flotilla containerd floor" (subset to run), BENCH_FLAGS (extra flotbench cri flags,
# e.g. "--pods 5 --density 8", "--share-pid"), BENCH_PULL=0 to skip imaged's pull benchmark, BENCH_PHASES=1 to run
# the fleet at log_level debug and print where each step of a pod start goes (flotbench phases),
# BENCH_PAIRED=0 not to pair each runtime's pod starts and density with the floor's (see PAIRED),
# BENCH_RUN_ON_DISK=1 to keep the runtimes' run state on disk (see runtmpfs), BENCH_FLOTILLA_TOML: a TOML
# drop-in for the fleet's configuration (A/B runs, e.g. "[sandboxd.runtimes.runc]\nexec_sync_via_runtime = true").
# BENCH_PERF=1 to record the whole machine with perf (cpu-clock) while each runtime and the floor are measured and
# print where the CPU of their density rounds went, by process (flotbench cpu; <name>.cpu.txt with the results).
# BENCH_DENSITY_ROUNDS (default 5): times each runtime and the floor measure density; the table shows the
# rounds' medians (one round is about a second, and a busy moment of the machine slows it by up to a third).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export PATH=$REPO/.tools/bin:/usr/local/go/bin:$PATH
export GOFLAGS=-buildvcs=false
GOTAGS=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_zfs,containers_image_docker_daemon_stub
TARGETS=${BENCH_TARGETS:-flotilla containerd floor}
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
CNI_BIN=$REPO/.tools/cni
# The containerd network; the floor takes 10.214.1-99 itself (flotbench floor).
CTRD_SUBNET=10.214.250.0/24
CTRD_BRIDGE=fbc$$
CTRD_BRIDGE=${CTRD_BRIDGE:0:15}

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }
want() { [[ " $TARGETS " == *" $1 "* ]]; }
# runtmpfs DIR: the runtimes' run state lives on tmpfs, as /run is on a node (Flotilla's run_root defaults
# to /run/flotilla, containerd's state to /run/containerd, runc's root to /run/runc): Flotilla's run/,
# containerd's state and the floor's runc root and bundles. Images, layers and records stay on disk.
runtmpfs() {
	mkdir -p "$1" || die "mkdir $1 failed"
	[ "${BENCH_RUN_ON_DISK:-0}" = 1 ] && return
	mount -t tmpfs -o mode=0755,size=2g flotbench "$1" || die "mount tmpfs on $1 failed"
}

# One bench at a time on a machine (its containerd subnet is fixed).
exec 8>/tmp/flotbench.lock
flock -n 8 || die "another hack/bench.sh is running (lock /tmp/flotbench.lock)"

T=$(mktemp -d /tmp/flotbench.XXXXXX)
OUT=$REPO/_output/bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
# Services run in their own sessions (setsid): a Ctrl-C reaches flotbench, which removes its pods
# while the runtimes still serve, and the cleanup below stops the services.
PIDS=()

cleanup() {
	set +e
	log "cleaning up $T"
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# Anything left of ours: shims and containers whose command line or cwd is under $T.
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "$T" || [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$T"* ]]; then
			log "killing leftover $pid: $(tr '\0' ' ' <"$p/cmdline" | cut -c1-100)"
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	for st in "$T"/flotilla/run/sandboxd/runtimes/runc "$T"/containerd/state/io.containerd.runtime.v2.task/k8s.io; do
		[ -d "$st" ] || continue
		for id in $(runc --root "$st" list -q 2>/dev/null); do runc --root "$st" delete --force "$id" 2>/dev/null; done
	done
	# Mounts (overlay rootfs, shm, netns pins) under $T, deepest first.
	grep -o " $T[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
	# BENCH_PHASES=1: the daemons' logs (their phase lines) stay with the results.
	[ "${BENCH_PHASES:-0}" = 1 ] && [ -d "$T/flotilla/log" ] && cp -r "$T/flotilla/log" "$OUT/flotilla-logs"
	# Bridges: containerd's, and the fleet's (named in its CNI conflist).
	bridges=$CTRD_BRIDGE
	bridges+=" $(grep -rhoE '"bridge": *"[^"]+"' "$T/flotilla" 2>/dev/null | sed -E 's/.*"([^"]+)"$/\1/' | sort -u)"
	for b in $bridges; do ip link show "$b" >/dev/null 2>&1 && ip link del "$b"; done
	# The parent cgroups runc made for the fleet (flotilla) and containerd (k8s.io), if nothing else is in
	# them: rmdir fails on a cgroup with children or processes, so a node's own containers keep theirs.
	rmdir /sys/fs/cgroup/*/flotilla /sys/fs/cgroup/*/k8s.io 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# coldcache FILE...: write back and drop the page cache of a runtime's executables before it starts, so
# its daemons map them as at a node's boot or after a package upgrade. An executable just written by Go's
# linker (make build) is cached in a way that leaves several MiB more of it mapped in each daemon
# (docs/performance.md, "Idle memory and the page cache").
coldcache() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		sync "$f" && dd if="$f" iflag=nocache count=0 status=none || log "could not drop the page cache of $f"
	done
}

# waitfor FILE PATTERN SECONDS: until FILE has a line matching PATTERN.
waitfor() {
	for _ in $(seq $(($3 * 10))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

log "building flotbench and the test registry"
mkdir -p "$T/bin"
go build -o "$T/bin/flotbench" ./bench/cmd/flotbench || die "build flotbench failed"
go build -o "$T/bin/test-registry" ./lib/testutil/registry/cmd/test-registry || die "build test-registry failed"
if want flotilla && [ ! -x bin/flotctl ]; then die "bin/flotctl missing: run make build"; fi

log "starting the test registry"
setsid "$T/bin/test-registry" -dir "$T/registry" -config-dir "$T/registry-conf" -images busybox,pause-3.10 \
	>"$T/registry.out" 2>"$T/registry.err" &
PIDS+=($!)
waitfor "$T/registry.out" '^ready' 300 || { cat "$T/registry.err" >&2; die "test registry did not get ready"; }
ADDR=$(sed -n 's/^registry: //p' "$T/registry.out")
REGCONF=$(sed -n 's/^registries-conf: //p' "$T/registry.out")
log "registry $ADDR"

# The floor's bundle is unpacked from the same busybox image.
umoci unpack --image "$REPO/.tools/images/busybox:1.29-2" "$T/bundle" >/dev/null 2>&1 ||
	die "umoci unpack of .tools/images/busybox:1.29-2 failed"

# The floor paired with each runtime's run: a floor pod before each of its sequential pod starts, and the
# floor's density right before its own (BENCH_PAIRED=0: off).
runtmpfs "$T/floor-run"
ROUNDS=(--density-rounds "${BENCH_DENSITY_ROUNDS:-5}")
PAIRED=()
[ "${BENCH_PAIRED:-1}" != 0 ] && PAIRED=(--floor-rootfs "$T/bundle/rootfs" --cni-bin "$CNI_BIN" --floor-state-dir "$T/floor-run")

# BENCH_PERF=1: perf record around each measurement; the samples of its density rounds, summed by process.
PERF=
if [ "${BENCH_PERF:-0}" = 1 ]; then
	if ! command -v perf >/dev/null; then
		log "BENCH_PERF=1: apt-get install linux-perf"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null 2>&1 ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf; } >/dev/null 2>&1
	fi
	if command -v perf >/dev/null; then PERF=1; else log "BENCH_PERF=1, but perf could not be installed: no CPU profile"; fi
fi
PERFPID=
perfstart() { # NAME
	[ -n "$PERF" ] || return 0
	perf record -q -a -e cpu-clock -F 999 -k CLOCK_REALTIME -o "$T/$1.perf" >/dev/null 2>"$T/$1.perf.err" &
	PERFPID=$!
	PIDS+=("$PERFPID")
}
perfstop() { # NAME: after flotbench wrote $OUT/NAME.json
	[ -n "$PERF" ] && [ -n "$PERFPID" ] || return 0
	kill -INT "$PERFPID" 2>/dev/null
	wait "$PERFPID" 2>/dev/null
	PERFPID=
	if [ -f "$OUT/$1.json" ] && [ -s "$T/$1.perf" ]; then
		echo
		perf script -i "$T/$1.perf" -F comm,tid,time,period,event 2>/dev/null |
			"$T/bin/flotbench" cpu --result "$OUT/$1.json" | tee "$OUT/$1.cpu.txt"
	else
		log "no CPU profile of $1: $(tail -1 "$T/$1.perf.err" 2>/dev/null)"
	fi
	rm -f "$T/$1.perf"
}

RESULTS=()
if want floor; then
	log "measuring the floor"
	perfstart floor
	"$T/bin/flotbench" floor --state-dir "$T/floor-run" --rootfs "$T/bundle/rootfs" --cni-bin "$CNI_BIN" --out "$OUT/floor.json" "${ROUNDS[@]}" |
		tee "$OUT/floor.txt"
	perfstop floor
fi

if want flotilla; then
	log "starting a Flotilla fleet"
	# The same network as containerd and the floor: bridge (no masquerade) + host-local + portmap.
	LEVEL=info
	[ "${BENCH_PHASES:-0}" = 1 ] && LEVEL=debug
	runtmpfs "$T/flotilla/run"
	if [ -n "${BENCH_FLOTILLA_TOML:-}" ]; then
		mkdir -p "$T/flotilla/etc/flotilla.d"
		printf '%b\n' "$BENCH_FLOTILLA_TOML" >"$T/flotilla/etc/flotilla.d/90-bench.toml"
	fi
	coldcache bin/flotilla bin/flotilla-shim bin/flotctl
	FLOTILLA_REGISTRIES_CONF=$REGCONF setsid ./bin/flotctl up --root "$T/flotilla" --log-level "$LEVEL" --cni-chain portmap \
		>"$T/flotctl.out" 2>"$T/flotctl.err" &
	PIDS+=($!)
	if waitfor "$T/flotctl.out" '^endpoint:' 90; then
		EP=$(sed -n 's/^endpoint: *//p' "$T/flotctl.out")
		log "fleet at $EP"
		perfstart flotilla
		# shellcheck disable=SC2086
		"$T/bin/flotbench" cri --name flotilla --endpoint "$EP" --image "$IMAGE" --scope "$T/flotilla" \
			--daemons criproxy,imaged,sandboxd,netd,nats-server --per-pod flotilla-shim,catatonit,pause \
			--out "$OUT/flotilla.json" "${ROUNDS[@]}" "${PAIRED[@]}" ${BENCH_FLAGS:-} | tee "$OUT/flotilla.txt"
		perfstop flotilla
		if [ "$LEVEL" = debug ]; then
			log "where the time goes (daemons' phase logs)"
			{ "$T/bin/flotbench" phases --result "$OUT/flotilla.json" --window podstart "$T"/flotilla/log/*.log
			  echo
			  "$T/bin/flotbench" phases --result "$OUT/flotilla.json" --window density "$T"/flotilla/log/*.log
			} | tee "$OUT/phases.txt"
		fi

	else
		log "the fleet did not come up; its stderr:"; tail -20 "$T/flotctl.err" >&2
	fi
fi

if want containerd; then
	log "starting containerd $(containerd --version | awk '{print $3}')"
	C=$T/containerd
	mkdir -p "$C/net.d"
	runtmpfs "$C/state"
	for reg in registry.k8s.io docker.io k8s.gcr.io gcr.io; do
		mkdir -p "$C/certs.d/$reg"
		cat >"$C/certs.d/$reg/hosts.toml" <<-TOML
			server = "https://$reg"
			[host."http://$ADDR/v2/$reg"]
			  capabilities = ["pull", "resolve"]
			  override_path = true
		TOML
	done
	# The network of the fleet and the floor (netd's conflist.Bridge with portmap, told its netfilter backend).
	"$T/bin/flotbench" conflist --name flotbench-containerd --bridge "$CTRD_BRIDGE" --subnet "$CTRD_SUBNET" \
		--data-dir "$C/ipam" >"$C/net.d/10-flotbench.conflist" || die "flotbench conflist failed"
	cat >"$C/config.toml" <<-TOML
		version = 2
		root = "$C/root"
		state = "$C/state"
		[grpc]
		  address = "$C/containerd.sock"
		[ttrpc]
		  address = "$C/containerd.sock.ttrpc"
		[debug]
		  address = "$C/debug.sock"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$C/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "registry.k8s.io/pause:3.10"
		  restrict_oom_score_adj = true
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$CNI_BIN"
		    conf_dir = "$C/net.d"
		  [plugins."io.containerd.grpc.v1.cri".registry]
		    config_path = "$C/certs.d"
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
	TOML
	coldcache "$(command -v containerd)" "$(command -v containerd-shim-runc-v2)"
	setsid containerd --config "$C/config.toml" >"$C/log" 2>&1 &
	PIDS+=($!)
	ok=
	for _ in $(seq 300); do
		crictl --runtime-endpoint "unix://$C/containerd.sock" --timeout 2s version >/dev/null 2>&1 && { ok=1; break; }
		sleep 0.1
	done
	if [ -n "$ok" ]; then
		perfstart containerd
		# shellcheck disable=SC2086
		"$T/bin/flotbench" cri --name containerd --endpoint "unix://$C/containerd.sock" --image "$IMAGE" --scope "$C" \
			--daemons containerd --per-pod containerd-shim-runc-v2,catatonit,pause \
			--out "$OUT/containerd.json" "${ROUNDS[@]}" "${PAIRED[@]}" ${BENCH_FLAGS:-} | tee "$OUT/containerd.txt"
		perfstop containerd
	else
		log "containerd did not answer; its log:"; tail -20 "$C/log" >&2
	fi
fi

# Ratios are flotilla/other: the first result is the numerator.
for r in flotilla containerd floor; do
	[ -f "$OUT/$r.json" ] && RESULTS+=("$OUT/$r.json")
done
if ((${#RESULTS[@]})); then
	echo
	"$T/bin/flotbench" compare "${RESULTS[@]}" | tee "$OUT/compare.txt"
fi

if [ "${BENCH_PULL:-1}" != 0 ]; then
	log "imaged's pull benchmark (imaged/internal/server BenchmarkPull)"
	go test -tags "$GOTAGS" -run '^$' -bench BenchmarkPull -benchtime 3x ./imaged/internal/server/ 2>&1 |
		tee "$OUT/imaged-pull.txt" | grep -E 'Benchmark|ok|FAIL' || true
fi
log "results in $OUT"
