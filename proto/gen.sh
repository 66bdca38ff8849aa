#!/bin/sh
# Regenerates the Go code of every .proto here. Run through `make proto`,
# which installs the pinned plugins into .tools/bin first.
set -eu
cd "$(dirname "$0")"
for f in daemon/v1/daemon.proto image/v1/image.proto net/v1/net.proto events/v1/events.proto; do
	protoc -I. --go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. "$f"
done
