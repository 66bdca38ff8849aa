// Package parallel runs numbered work items on a fixed number of workers,
// as the density scenarios of a runtime and of the floor both do.
package parallel

import (
	"context"
	"sync"
)

// Run calls f(0), …, f(n-1) on max(workers, 1) goroutines and returns when
// all calls handed out have returned. It stops handing out work when ctx
// ends.
func Run(ctx context.Context, workers, n int, f func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f(i)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}
