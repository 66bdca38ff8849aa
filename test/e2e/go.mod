module flotilla.dev/test/e2e

go 1.26.0

replace (
	flotilla.dev/lib => ../../lib
	flotilla.dev/proto => ../../proto
)
