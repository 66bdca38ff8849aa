module flotilla.dev/test/e2e

go 1.26.8

replace (
	flotilla.dev/lib => ../../lib
	flotilla.dev/proto => ../../proto
)

replace flotilla.dev/ctl => ../../ctl

replace flotilla.dev/shim => ../../shim

require (
	flotilla.dev/ctl v0.0.0-00010101000000-000000000000
	flotilla.dev/lib v0.0.0-00010101000000-000000000000
	flotilla.dev/proto v0.0.0-00010101000000-000000000000
	flotilla.dev/shim v0.0.0-00010101000000-000000000000
	google.golang.org/grpc v1.85.0
	k8s.io/cri-api v0.37.2
)

require (
	flotilla.dev/netd v0.0.0-00010101000000-000000000000 // indirect
	github.com/antithesishq/antithesis-sdk-go v0.9.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.3 // indirect
	github.com/nats-io/nats-server/v2 v2.15.3 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.17 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace flotilla.dev/netd => ../../netd
