package schema

import (
	"os"
	"strconv"
)

// benchOptions are the Options benchmarks load with: the environment
// variable GITMESH_BENCH_WORKERS sets the number of plain-path workers, so
// BenchmarkLoad can compare worker counts.
func benchOptions() Options {
	var o Options
	if n, err := strconv.Atoi(os.Getenv("GITMESH_BENCH_WORKERS")); err == nil {
		o.tune.workers = n
	}
	return o
}
