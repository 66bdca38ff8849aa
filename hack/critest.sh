#!/bin/bash
# critest.sh: runs critest (cri-tools v1.37.0 validation suite) against Flotilla, offline.
#
#   hack/critest.sh [--endpoint unix:///path/cri.sock] [--focus REGEX] [--skip REGEX] [--keep]
#                   [--registry-only] [-- extra critest flags]
#
# It builds the test images if needed and starts the local test registry (lib/testutil/registry),
# then, unless --endpoint is given, a fleet with `bin/flotctl up --root <tmp>` told to use the
# registry's registries.conf and policy.json (FLOTILLA_REGISTRIES_CONF, FLOTILLA_SIGNATURE_POLICY).
# With --endpoint, point that runtime's image service at the registries.conf printed here.
# critest runs its specs one at a time (this critest is a `go test -c` binary: passing -parallel
# makes ginkgo refuse to run); its log, the junit report and the fleet's logs stay in the work
# directory (printed) when --keep is given or specs fail.
#
# A report, not a gate: exits 0 whenever critest ran (even with failed specs), 1 when it could not
# run at all. Prints the Passed / Failed / Skipped counts and the failed specs.
# CRITEST_LOG_LEVEL=debug runs the fleet at debug (the phase lines of each call; with --keep).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CRITEST=${CRITEST:-$ROOT/.tools/bin/critest}
ENDPOINT=""
FOCUS=""
SKIP=""
KEEP=0
REGISTRY_ONLY=0
EXTRA=()
while [ $# -gt 0 ]; do
	case $1 in
	--endpoint) ENDPOINT=$2; shift 2 ;;
	--endpoint=*) ENDPOINT=${1#*=}; shift ;;
	--focus) FOCUS=$2; shift 2 ;;
	--skip) SKIP=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--registry-only) REGISTRY_ONLY=1; shift ;;
	--) shift; EXTRA=("$@"); break ;;
	-h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "critest.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
	esac
done

die() { echo "critest.sh: $*" >&2; exit 1; }

[ -x "$CRITEST" ] || die "critest not found at $CRITEST (hack/install-deps.sh builds it)"
command -v go >/dev/null || die "go not found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flotilla-critest.XXXXXX")
REG_PID=""
FLEET_PID=""
FAILED=0

cleanup() {
	if [ -n "$FLEET_PID" ] && kill -0 "$FLEET_PID" 2>/dev/null; then
		# what critest left behind (failed specs skip their cleanup), removed through the CRI
		if [ -n "$ENDPOINT" ] && [ -x "$ROOT/.tools/bin/crictl" ]; then
			timeout 120 "$ROOT/.tools/bin/crictl" --runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" \
				rmp --all --force >"$WORK/cleanup.log" 2>&1 ||
				echo "critest.sh: removing the pods left by critest failed (see $WORK/cleanup.log)" >&2
		fi
		kill -TERM "$FLEET_PID" 2>/dev/null
		wait "$FLEET_PID" 2>/dev/null
	fi
	if [ -n "$REG_PID" ] && kill -0 "$REG_PID" 2>/dev/null; then
		kill -TERM "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
	fi
	# mounts left under the work directory (e.g. pinned network namespaces of pods not removed)
	grep -o " $WORK/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
	# the fleet's bridge (the CNI bridge plugin creates it and nothing removes it)
	for b in $(grep -rhoE '"bridge": *"[^"]+"' "$WORK" 2>/dev/null | sed -E 's/.*"([^"]+)"$/\1/' | sort -u); do
		ip link show "$b" >/dev/null 2>&1 && ip link del "$b"
	done
	if [ "$KEEP" = 1 ] || [ "$FAILED" = 1 ]; then
		echo "critest.sh: logs kept in $WORK" >&2
	else
		rm -rf "$WORK" 2>/dev/null || echo "critest.sh: could not remove all of $WORK" >&2
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_line FILE PATTERN PID SECONDS: waits until FILE has a line matching PATTERN, while PID lives.
wait_line() {
	local file=$1 pattern=$2 pid=$3 limit=$(( $4 * 10 )) i=0
	while ! grep -q -- "$pattern" "$file" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || return 1
		i=$((i + 1))
		[ "$i" -le "$limit" ] || return 2
		sleep 0.1 # polling a log file for readiness
	done
}

# --- the test registry --------------------------------------------------------------------------------
echo "critest.sh: work directory $WORK" >&2
(cd "$ROOT" && go build -o "$WORK/test-registry" ./lib/testutil/registry/cmd/test-registry) ||
	{ FAILED=1; die "building lib/testutil/registry/cmd/test-registry failed"; }
"$WORK/test-registry" -dir "$WORK/registry" -config-dir "$WORK/etc" >"$WORK/registry.out" 2>&1 &
REG_PID=$!
if ! wait_line "$WORK/registry.out" '^ready$' "$REG_PID" 600; then
	FAILED=1
	cat "$WORK/registry.out" >&2
	die "the test registry did not start"
fi
REGISTRIES_CONF=$(sed -n 's/^registries-conf: //p' "$WORK/registry.out")
POLICY=$(sed -n 's/^policy: //p' "$WORK/registry.out")
echo "critest.sh: test registry at $(sed -n 's/^registry: //p' "$WORK/registry.out"), registries.conf $REGISTRIES_CONF" >&2
if [ "$REGISTRY_ONLY" = 1 ]; then
	echo "critest.sh: --registry-only: registry running until Ctrl-C" >&2
	wait "$REG_PID"
	exit 0
fi

# --- the fleet ------------------------------------------------------------------------------------------
if [ -z "$ENDPOINT" ]; then
	FLOTCTL=$ROOT/bin/flotctl
	[ -x "$FLOTCTL" ] || { FAILED=1; die "$FLOTCTL not built (make build)"; }
	FLOTILLA_REGISTRIES_CONF=$REGISTRIES_CONF FLOTILLA_SIGNATURE_POLICY=$POLICY \
		"$FLOTCTL" up --root "$WORK/root" --log-level "${CRITEST_LOG_LEVEL:-info}" >"$WORK/flotctl.log" 2>&1 &
	FLEET_PID=$!
	if ! wait_line "$WORK/flotctl.log" '^endpoint: ' "$FLEET_PID" 180; then
		FAILED=1
		tail -40 "$WORK/flotctl.log" >&2
		die "flotctl up did not report an endpoint"
	fi
	ENDPOINT=$(sed -n 's/^endpoint: //p' "$WORK/flotctl.log" | head -1)
	echo "critest.sh: fleet up (flotctl pid $FLEET_PID), endpoint $ENDPOINT" >&2
fi

# --- critest ----------------------------------------------------------------------------------------------
# Both services must answer before critest starts (a fleet can report its endpoint while a daemon
# behind it is still starting): polls for up to 60s.
cri_ready() {
	local crictl=("$ROOT/.tools/bin/crictl" --runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" --timeout 5s)
	"${crictl[@]}" version && "${crictl[@]}" images -q
}
if [ -x "$ROOT/.tools/bin/crictl" ]; then
	deadline=$((SECONDS + 60))
	while ! cri_ready >"$WORK/ready.log" 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ] || { [ -n "$FLEET_PID" ] && ! kill -0 "$FLEET_PID" 2>/dev/null; }; then
			FAILED=1
			cat "$WORK/ready.log" >&2
			die "no CRI runtime and image service answer on $ENDPOINT"
		fi
		sleep 0.1 # polling for readiness
	done
fi
ARGS=(-runtime-endpoint "$ENDPOINT" -image-endpoint "$ENDPOINT"
	--ginkgo.timeout 75m --ginkgo.no-color --ginkgo.junit-report "$WORK/junit.xml")
[ -n "$FOCUS" ] && ARGS+=(--ginkgo.focus "$FOCUS")
[ -n "$SKIP" ] && ARGS+=(--ginkgo.skip "$SKIP")
echo "critest.sh: $CRITEST ${ARGS[*]} ${EXTRA[*]}" >&2
start=$(date +%s)
(cd "$WORK" && "$CRITEST" "${ARGS[@]}" "${EXTRA[@]}") >"$WORK/critest.log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))

summary=$(grep -E '^(SUCCESS|FAIL)! -- [0-9]+ Passed' "$WORK/critest.log" | tail -1)
ran=$(grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$WORK/critest.log" | tail -1)
if [ -z "$summary" ]; then
	FAILED=1
	tail -40 "$WORK/critest.log" >&2
	die "critest did not run (exit $rc); see $WORK/critest.log"
fi
passed=$(sed -E 's/.* ([0-9]+) Passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.* ([0-9]+) Failed.*/\1/' <<<"$summary")
skipped=$(sed -E 's/.* ([0-9]+) Skipped.*/\1/' <<<"$summary")
echo
echo "critest: $ran"
echo "critest: passed $passed, failed $failed, skipped $skipped (in ${elapsed}s, critest exit $rc)"
if [ "$failed" != 0 ]; then
	FAILED=1
	echo "critest: failed specs:"
	awk '/^Summarizing [0-9]+ Failure/ {on=1; next} on && /^[ \t]*\[FAIL\]/ {sub(/^[ \t]*/, "  "); print}' "$WORK/critest.log"
fi
exit 0
