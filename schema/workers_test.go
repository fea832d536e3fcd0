package schema

import (
	"os"
	"strconv"
)

func init() {
	// GITMESH_BENCH_WORKERS lets BenchmarkLoad compare worker counts.
	if n, err := strconv.Atoi(os.Getenv("GITMESH_BENCH_WORKERS")); err == nil {
		workers = n
	}
}
