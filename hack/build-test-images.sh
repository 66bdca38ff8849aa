#!/bin/bash
# build-test-images.sh [OUTDIR]: builds the images the tests and critest pull, offline, from Debian
# packages (apt-get download + dpkg -x) and two small C programs (test/images/src), as OCI image layouts
# made with umoci: OUTDIR/<name>, one layout per image, tagged with the upstream tags it stands for.
# test/images/images.txt maps each name to the upstream references (pushed by lib/testutil/registry).
#
# Cached: OUTDIR/.stamp holds a hash of this script and test/images/ (but *.md); when it matches, nothing
# is done.
# Safe to run concurrently (flock on OUTDIR.lock); the new set replaces the old one only when complete.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/test/images
OUT=${1:-$ROOT/.tools/images}
OUT=$(mkdir -p "$(dirname "$OUT")" && cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

for tool in umoci gcc apt-get dpkg flock sha256sum; do
	command -v "$tool" >/dev/null || { echo "build-test-images: $tool not found" >&2; exit 1; }
done

HASH=$( (cat "${BASH_SOURCE[0]}"; cd "$SRC" && find . -type f ! -name '*.md' | LC_ALL=C sort | xargs cat) | sha256sum | cut -d' ' -f1)

exec 9>"$OUT.lock"
flock 9
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$HASH" ]; then
	exit 0
fi
echo "build-test-images: building into $OUT" >&2

W=$(mktemp -d "${TMPDIR:-/tmp}/flotilla-images.XXXXXX")
NEW=$OUT.new.$$
trap 'rm -rf "$W" "$NEW"' EXIT
rm -rf "$NEW"
mkdir -p "$NEW"

# --- Debian packages -------------------------------------------------------------------------------
mkdir -p "$W/debs"
download() { (cd "$W/debs" && apt-get download -q busybox libc6 catatonit >/dev/null 2>"$W/apt.log"); }
# the package lists may be missing (a fresh machine): update them once and retry
download || { apt-get update -qq >/dev/null 2>&1; download; } || {
	cat "$W/apt.log" >&2; echo "build-test-images: apt-get download failed" >&2; exit 1; }
for deb in "$W"/debs/*.deb; do
	pkg=$(dpkg-deb -f "$deb" Package)
	dpkg -x "$deb" "$W/x-$pkg"
done

# --- C programs -----------------------------------------------------------------------------------
gcc -O2 -static -o "$W/webserver" "$SRC/src/webserver.c" 2>/dev/null
gcc -O2 -static -o "$W/nnp" "$SRC/src/nonewprivs.c"
strip "$W/webserver" "$W/nnp"

# --- busybox root filesystem ------------------------------------------------------------------------
# The dynamic Debian busybox (it runs applets found in PATH, not in-process), its libraries, and
# every applet as a hard link to it (MaskedPaths on /bin/ls must not mask busybox itself).
B=$W/base
mkdir -p "$B"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,tmp,var/run,var/log,home,proc,sys,dev}
mkdir -p "$B/lib/x86_64-linux-gnu" "$B/lib64"
chmod 1777 "$B/tmp"
chmod 700 "$B/root"
install -m 0755 "$W/x-busybox/bin/busybox" "$B/bin/busybox"
L=$W/x-libc6/lib/x86_64-linux-gnu
[ -d "$L" ] || L=$W/x-libc6/usr/lib/x86_64-linux-gnu
for lib in ld-linux-x86-64.so.2 libc.so.6 libresolv.so.2 libm.so.6 libnss_files.so.2 libnss_dns.so.2; do
	[ -e "$L/$lib" ] && cp -L "$L/$lib" "$B/lib/x86_64-linux-gnu/$lib"
done
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$B/lib64/ld-linux-x86-64.so.2"
for applet in $("$B/bin/busybox" --list); do
	[ "$applet" = busybox ] && continue
	[ -e "$B/bin/$applet" ] || ln "$B/bin/busybox" "$B/bin/$applet"
done
install -m 0755 "$SRC/pgrep" "$B/bin/pgrep"
install -m 0755 "$SRC/ipcs" "$B/bin/ipcs"
cat >"$B/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$B/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
EOF
echo "hosts: files dns" >"$B/etc/nsswitch.conf"
find "$B" -exec touch -h -d @0 {} +

PATHENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# layer_from DIR LAYOUT TAG: a fresh layout LAYOUT whose image TAG has DIR as its only layer.
layer_from() {
	local dir=$1 layout=$2 tag=$3 bundle
	bundle=$W/bundle.$RANDOM$RANDOM
	umoci init --layout "$layout"
	umoci new --image "$layout:$tag"
	umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
	cp -a "$dir/." "$bundle/rootfs/"
	umoci repack --image "$layout:$tag" --history.created_by "build-test-images.sh" "$bundle"
	umoci config --no-history --image "$layout:$tag" --os linux --architecture amd64 --config.env "$PATHENV"
	rm -rf "$bundle"
}

# The busybox base, built once: every busybox-based image shares this very layer blob.
layer_from "$B" "$W/base-layout" base
umoci config --no-history --image "$W/base-layout:base" --config.cmd sh

# derived NAME TAG SETUP [umoci config flags...]: OUTDIR/NAME:TAG = the busybox base plus a layer
# with what the shell function SETUP (called with the rootfs) adds, then the config flags.
derived() {
	local name=$1 tag=$2 setup=$3 bundle
	shift 3
	bundle=$W/bundle-$name
	cp -a "$W/base-layout" "$NEW/$name"
	umoci unpack --image "$NEW/$name:base" "$bundle" >/dev/null
	"$setup" "$bundle/rootfs" "$name"
	umoci repack --image "$NEW/$name:base" --history.created_by "build-test-images.sh $name" "$bundle"
	umoci config --no-history --image "$NEW/$name:base" --tag "$tag" "$@"
	umoci rm --image "$NEW/$name:base"
	umoci gc --layout "$NEW/$name"
	rm -rf "$bundle"
}

mark() { echo "$2" >"$1/etc/flotilla-test-image"; }
nothing_but_mark() { mark "$@"; }

# busybox
derived busybox 1.29-2 nothing_but_mark
for t in latest 1.36; do umoci tag --image "$NEW/busybox:1.29-2" "$t"; done

# pause: catatonit -P (static), a different image for each version
for v in 3.10 3.9; do
	mkdir -p "$W/pause-$v/etc"
	install -m 0755 "$W/x-catatonit/usr/bin/catatonit" "$W/pause-$v/catatonit"
	echo "pause $v (catatonit -P)" >"$W/pause-$v/etc/flotilla-test-image"
	find "$W/pause-$v" -exec touch -h -d @0 {} +
	layer_from "$W/pause-$v" "$NEW/pause-$v" "$v"
	umoci config --no-history --image "$NEW/pause-$v:$v" --config.entrypoint /catatonit \
		--config.entrypoint -P --config.user 65535:65535 --clear config.cmd
done

web() {
	mark "$@"
	mkdir -p "$1/usr/sbin" "$1/usr/local/apache2/bin" "$1/usr/local/apache2/logs" "$1/var/run"
	case $2 in
	httpd) install -m 0755 "$W/webserver" "$1/usr/local/apache2/bin/httpd" ;;
	*) install -m 0755 "$W/webserver" "$1/usr/sbin/nginx" ;;
	esac
}
derived nginx 1.14-2 web --config.cmd nginx --config.cmd -g --config.cmd "daemon off;" \
	--config.env WEB_NAME=nginx --config.env WEB_PORT=80 --config.env WEB_PIDFILE=/var/run/nginx.pid \
	--config.env "WEB_TITLE=nginx: master process nginx -g daemon off;" --config.exposedports 80/tcp \
	--config.stopsignal SIGQUIT
derived hostnet-nginx latest web --config.cmd nginx --config.cmd -g --config.cmd "daemon off;" \
	--config.env WEB_NAME=nginx --config.env WEB_PORT=12003 --config.env WEB_PIDFILE=/var/run/nginx.pid \
	--config.env "WEB_TITLE=nginx: master process nginx -g daemon off;" --config.exposedports 12003/tcp
derived httpd 2.4.39-4 web --config.cmd /usr/local/apache2/bin/httpd --config.env WEB_NAME=httpd \
	--config.env WEB_PORT=80 --config.env WEB_PIDFILE=/usr/local/apache2/logs/httpd.pid \
	--config.exposedports 80/tcp --config.workingdir /usr/local/apache2

nnp() {
	mark "$@"
	install -m 4755 -o root -g root "$W/nnp" "$1/usr/local/bin/nnp"
}
derived nonewprivs 1.3 nnp --config.entrypoint /usr/local/bin/nnp --clear config.cmd

derived test-image-user-uid latest nothing_but_mark --config.user 1002
derived test-image-user-username latest nothing_but_mark --config.user www-data
derived test-image-user-uid-group latest nothing_but_mark --config.user 1003:1004
derived test-image-user-username-group latest nothing_but_mark --config.user www-data:1004
predefined_group() {
	mark "$@"
	echo "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh" >>"$1/etc/passwd"
	printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>"$1/etc/group"
	mkdir -p "$1/home/default-user"
	chown 1000:1000 "$1/home/default-user"
}
derived test-image-predefined-group latest predefined_group --config.user 1000

for n in test-image-latest test-image-1 test-image-2 test-image-3; do
	derived "$n" latest nothing_but_mark
done
derived test-image-tags 1 nothing_but_mark
for t in 2 3; do umoci tag --image "$NEW/test-image-tags:1" "$t"; done
derived test-image-tag-test test nothing_but_mark
derived test-image-tag-all all nothing_but_mark

# large: the busybox base plus four layers of 14 MiB of incompressible data (the pull benchmark)
cp -a "$W/base-layout" "$NEW/large"
umoci unpack --image "$NEW/large:base" "$W/bundle-large" >/dev/null
for i in 1 2 3 4; do
	mkdir -p "$W/bundle-large/rootfs/data"
	head -c $((14 << 20)) /dev/urandom >"$W/bundle-large/rootfs/data/blob$i"
	umoci repack --refresh-bundle --image "$NEW/large:base" --history.created_by "large layer $i" "$W/bundle-large"
done
umoci config --no-history --image "$NEW/large:base" --tag 1
umoci rm --image "$NEW/large:base"
umoci gc --layout "$NEW/large"
rm -rf "$W/bundle-large"

echo "$HASH" >"$NEW/.stamp"
rm -rf "$OUT.old.$$"
[ -e "$OUT" ] && mv "$OUT" "$OUT.old.$$"
mv "$NEW" "$OUT"
rm -rf "$OUT.old.$$"
echo "build-test-images: done ($(du -sh "$OUT" | cut -f1))" >&2
