package schema

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gitmesh/gitmesh/schema/model"
)

// SandboxWorkerArg, as a binary's first argument, makes it an evaluation
// worker (see Sandbox): the binary's main calls RunSandboxWorker before
// anything else. It is not a command users type.
const SandboxWorkerArg = "__gitmesh-eval-worker"

// IsSandboxWorker reports whether args (os.Args) start a worker.
func IsSandboxWorker(args []string) bool {
	return len(args) > 1 && args[1] == SandboxWorkerArg
}

// RunSandboxWorker is the worker's main: args are os.Args, the memory cap
// follows SandboxWorkerArg. It caps its own memory, then answers requests
// on stdin until stdin closes, and returns the exit code. When evaluation
// exceeds the cap the Go runtime ends the process ("fatal error: out of
// memory"); the parent reads that as the finding.
func RunSandboxWorker(args []string) int {
	if len(args) < 3 {
		fmt.Fprintf(os.Stderr, "%s: want the memory limit in bytes\n", SandboxWorkerArg)
		return 3
	}
	limit, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil || limit <= 0 {
		fmt.Fprintf(os.Stderr, "%s: bad memory limit %q\n", SandboxWorkerArg, args[2])
		return 3
	}
	// Ctrl-C reaches the whole process group; the parent decides what
	// it means (it kills the worker when it cancels a load), and the
	// kernel kills the worker when the parent dies (workerAttr).
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	effective, err := capMemory(limit)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", SandboxWorkerArg, err)
		return 3
	}
	prog := os.NewFile(3, "progress")
	if b, err := json.Marshal(progress{Limit: effective}); err == nil {
		_, _ = prog.Write(append(b, '\n'))
	}
	if err := serveSandbox(os.Stdin, os.Stdout, prog); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", SandboxWorkerArg, err)
		return 3
	}
	return 0
}

// serveSandbox answers requests until in closes. The worker's Cache lives
// as long as the worker, so a serve's incremental loads stay incremental
// while they run in the sandbox.
func serveSandbox(in io.Reader, out io.Writer, prog io.Writer) error {
	dec := json.NewDecoder(bufio.NewReaderSize(in, 1<<16))
	bw := bufio.NewWriterSize(out, 1<<16)
	enc := json.NewEncoder(bw)
	cache := NewCache()
	for {
		var req sandboxRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		resp := answer(req, cache, prog)
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
	}
}

// answer runs one request: a locate pass (its answer is the progress
// lines; the response only says it finished) or a load.
func answer(req sandboxRequest, cache *Cache, prog io.Writer) sandboxResponse {
	if req.Locate != "" {
		locate(fromWire(req.Data), req.Locate, locateWriter(prog, req.Seq))
		return sandboxResponse{}
	}
	ref := &evaluatorRef{}
	ref.notify = progressWriter(prog, req.Seq, ref)
	var opts Options
	if req.Incremental {
		opts.Cache = cache
	}
	var stop atomic.Bool
	files := repoFiles{data: fromWire(req.Data), guardrails: fromWire(req.Guardrails)}
	resp := encodeResult(evaluate(files, &stop, ref, opts))
	if req.Incremental {
		st := cache.Stats()
		resp.Stats = &st
	}
	resp.PeakRSS = peakRSS()
	return resp
}

// locateWriter reports locate's progress: each line is written, unbuffered
// and whole, so the last line the parent read is where the worker was
// when it died. Safe for concurrent use (plain-path workers report from
// several goroutines).
func locateWriter(w io.Writer, seq int64) func(string, model.Pos) {
	var mu sync.Mutex
	return func(at string, pos model.Pos) {
		b, err := json.Marshal(progress{Seq: seq, At: at, Pos: pos})
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(append(b, '\n'))
	}
}

// progressWriter returns the notify function of one load request: the
// entity evaluation moves to, with its position.
func progressWriter(w io.Writer, seq int64, ref *evaluatorRef) func(string) {
	if w == nil {
		return nil
	}
	report := locateWriter(w, seq)
	return func(at string) {
		var pos model.Pos
		if src, _ := ref.sources.Load().(*model.Sources); src != nil && at != "" {
			pos = src.Lookup(at)
		}
		report(at, pos)
	}
}
