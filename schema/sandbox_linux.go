package schema

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// capMemory bounds the worker. The hard bound is RLIMIT_AS, the kernel's
// cap on address space: a single huge allocation (strings.Repeat of a
// gigabyte allocates it in one call) fails at once, where a watcher that
// samples RSS would see it only after the pages were touched. The cap is
// the address space the worker has at start (the Go runtime alone reserves
// about 1.2 GB that it never touches) plus limit, never above an inherited
// cap (`ulimit -v`).
//
// No soft limit (debug.SetMemoryLimit) is set: measured, it made a bomb
// take twice as long to die (the collector runs flat out near the limit)
// and a legitimate 10,000-service repository loaded within 1 GiB without
// it as with it.
// It returns the memory evaluation may use.
func capMemory(limit int64) (int64, error) {
	baseKB, err := statusKB("VmSize")
	if err != nil {
		return 0, err
	}
	base := baseKB * 1024
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil {
		return 0, fmt.Errorf("read address space limit: %w", err)
	}
	want := uint64(base + limit)
	if rl.Cur != rlimInfinity && rl.Cur < want {
		// An inherited cap (ulimit -v) is lower already.
		return max(int64(rl.Cur)-base, 0), nil
	}
	rl.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &rl); err != nil {
		return 0, fmt.Errorf("cap address space at %d bytes: %w", want, err)
	}
	return limit, nil
}

// rlimInfinity is RLIM_INFINITY as the kernel reports it in a uint64.
const rlimInfinity = ^uint64(0)

// peakRSS is the worker's high-water resident set in bytes (0 if unknown).
func peakRSS() int64 {
	kb, err := statusKB("VmHWM")
	if err != nil {
		return 0
	}
	return kb * 1024
}

// exitRSS is the largest resident set of an exited process, in bytes.
func exitRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru != nil {
		return ru.Maxrss << 10 // KiB on Linux
	}
	return 0
}

// statusKB reads one "Name:  N kB" line of /proc/self/status.
func statusKB(name string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", name)
}

// workerAttr makes the kernel kill a worker whose parent died, so a worker
// busy with a bomb never outlives the serve that started it.
func workerAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
