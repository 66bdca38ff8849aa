module flotilla.dev/bench

go 1.26.8

replace (
	flotilla.dev/lib => ../lib
	flotilla.dev/netd => ../netd
	flotilla.dev/proto => ../proto
)

require (
	flotilla.dev/lib v0.0.0-00010101000000-000000000000
	flotilla.dev/netd v0.0.0-00010101000000-000000000000
	github.com/containernetworking/cni v1.3.1
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.50.0
	google.golang.org/grpc v1.85.0
	k8s.io/cri-api v0.37.2
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
