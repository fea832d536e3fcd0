package schema

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// parallelParse runs parse(i) for i in [0, n) on up to four goroutines, each
// taking every k-th index (parsing files shares no state). A panic on a
// worker is re-raised on the caller's goroutine, whose recover turns it into
// an internal error instead of crashing the process.
func parallelParse(n int, parse func(i int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), 4, n))
	var wg sync.WaitGroup
	var panicked atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicked.Store(fmt.Sprintf("%v\n%s", p, debug.Stack()))
				}
			}()
			for i := w; i < n; i += workers {
				parse(i)
			}
		}()
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(fmt.Sprintf("parse: %v", p))
	}
}
