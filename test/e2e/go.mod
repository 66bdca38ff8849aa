module flotilla.dev/test/e2e

go 1.26.0

replace (
	flotilla.dev/lib => ../../lib
	flotilla.dev/proto => ../../proto
)

replace flotilla.dev/ctl => ../../ctl

require (
	flotilla.dev/ctl v0.0.0-00010101000000-000000000000
	google.golang.org/grpc v1.85.0
	k8s.io/cri-api v0.37.2
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
