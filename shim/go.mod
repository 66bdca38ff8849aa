module flotilla.dev/shim

go 1.26.0

replace (
	flotilla.dev/lib => ../lib
	flotilla.dev/proto => ../proto
)

require (
	flotilla.dev/lib v0.0.0-00010101000000-000000000000
	github.com/containerd/errdefs v1.0.0
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/seccomp/libseccomp-golang v0.11.1
	golang.org/x/sys v0.50.0
)
