module flotilla.dev/bench

go 1.26.0

replace (
	flotilla.dev/lib => ../lib
	flotilla.dev/proto => ../proto
)
