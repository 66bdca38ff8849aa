module flotilla.dev/shim

go 1.26.0

replace (
	flotilla.dev/lib => ../lib
	flotilla.dev/proto => ../proto
)
