package schema

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Sandbox evaluates repositories in a worker process whose memory is
// capped, so untrusted CUE cannot take the control plane down.
//
// Why a process: CUE evaluation can neither be interrupted nor bounded in
// memory from inside. A 150-byte file (strings.Repeat of a megabyte string,
// a thousand times) allocates a gigabyte in one call, and nested
// comprehensions or string doubling grow just as fast; refusing builtins
// cannot catch every construct that amplifies, and a goroutine that is
// abandoned keeps allocating. A process can be capped by the kernel
// (RLIMIT_AS, see capMemory) and killed on timeout, and its death costs the
// parent nothing: the load becomes a positioned finding (GM0010, or GM0007
// for the timeout) and the caller keeps what it had. Measured cost: one
// worker start (about 30 ms) per CLI run, and a JSON round trip of the
// model per load.
//
// The worker keeps its own incremental Cache (see Cache) for its life, so a
// serve's loads stay incremental; a load that kills the worker loses that
// cache, and the next load is a full one.
//
// A Sandbox runs one load at a time and is safe for concurrent use.
type Sandbox struct {
	exe   string
	limit int64

	mu  sync.Mutex // one load at a time; guards w and seq
	w   *worker
	seq int64
	// busy is the worker of the request in flight, for locate's
	// watchdog, which runs while mu is held.
	busy atomic.Pointer[worker]
	// peak is the largest resident set any of its workers reached.
	peak atomic.Int64
}

// SandboxOptions configure a Sandbox.
type SandboxOptions struct {
	// Executable is the binary started as the worker; its main must call
	// RunSandboxWorker when IsSandboxWorker(os.Args). Default: this binary.
	Executable string
	// MaxMemory is how much memory evaluation may use beyond the worker's
	// own start, in bytes. Default DefaultMaxEvalMemory.
	MaxMemory int64
}

// DefaultMaxEvalMemory bounds evaluation when SandboxOptions do not.
// Measured: a generated mesh of 10,000 services loads within it (and not
// within 512 MiB); the repeat bomb passes it within a second.
const DefaultMaxEvalMemory = 1 << 30

// NewSandbox returns a Sandbox; the worker starts with the first load.
func NewSandbox(o SandboxOptions) (*Sandbox, error) {
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("evaluation sandbox: find this binary: %w", err)
		}
		o.Executable = exe
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxEvalMemory
	}
	return &Sandbox{exe: o.Executable, limit: o.MaxMemory}, nil
}

// Limit is the memory cap in bytes.
func (s *Sandbox) Limit() int64 { return s.limit }

// PeakRSS is the largest resident set, in bytes, that any worker of s
// reached: a live one as it last reported, a dead one as the kernel
// accounted it when it exited. 0 where the platform does not say.
func (s *Sandbox) PeakRSS() int64 { return s.peak.Load() }

func (s *Sandbox) notePeak(n int64) {
	for {
		old := s.peak.Load()
		if n <= old || s.peak.CompareAndSwap(old, n) {
			return
		}
	}
}

// Close stops the worker.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	w := s.w
	s.w = nil
	_ = w.stdin.Close() // the worker exits at EOF
	<-w.done
	return nil
}

// worker is one running worker process.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *json.Decoder
	stderr *headBuffer
	last   atomic.Pointer[progress]
	lastNS atomic.Int64  // when the last progress line (or request) came
	limit  atomic.Int64  // the worker's own report of its cap
	done   chan struct{} // closed once the process was waited for
	err    error         // its exit status, set before done closes
	killed atomic.Bool   // the parent killed it (timeout, cancel)
}

func (s *Sandbox) start() (*worker, error) {
	cmd := exec.Command(s.exe, SandboxWorkerArg, strconv.FormatInt(s.limit, 10))
	workerAttr(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("evaluation sandbox: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("evaluation sandbox: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("evaluation sandbox: %w", err)
	}
	w := &worker{cmd: cmd, stdin: stdin, out: json.NewDecoder(bufio.NewReaderSize(stdout, 1<<16)),
		stderr: &headBuffer{max: 4096}, done: make(chan struct{})}
	cmd.Stderr = w.stderr
	cmd.ExtraFiles = []*os.File{pw}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("evaluation sandbox: start %s: %w", s.exe, err)
	}
	pw.Close()
	go w.readProgress(pr)
	go func() {
		w.err = cmd.Wait()
		s.notePeak(exitRSS(cmd.ProcessState))
		close(w.done)
	}()
	return w, nil
}

// readProgress keeps the last progress line; it ends when the worker does.
func (w *worker) readProgress(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var p progress
		switch {
		case json.Unmarshal(sc.Bytes(), &p) != nil:
		case p.Limit > 0:
			w.limit.Store(p.Limit)
		default:
			w.last.Store(&p)
			w.touch()
		}
	}
}

func (w *worker) touch()            { w.lastNS.Store(time.Now().UnixNano()) }
func (w *worker) lastAt() time.Time { return time.Unix(0, w.lastNS.Load()) }

func (w *worker) kill() {
	w.killed.Store(true)
	_ = w.cmd.Process.Kill()
	<-w.done
}

// outcome is what one load ended with: a result, or where and why it was
// stopped.
type outcome struct {
	r       loadResult
	stopped bool
	code    string
	message string
	at      string
	pos     model.Pos
}

// evaluate runs one load in the worker.
func (s *Sandbox) evaluate(ctx context.Context, files repoFiles, opts Options) outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := sandboxRequest{Data: toWire(files.data), Guardrails: toWire(files.guardrails), Incremental: opts.Cache != nil}
	resp, w, err := s.call(ctx, &req)
	switch {
	case err != nil:
		return outcome{r: loadResult{err: err}}
	case w == nil:
		if opts.Cache != nil && resp.Stats != nil {
			opts.Cache.setStats(*resp.Stats)
		}
		return outcome{r: decodeResult(resp)}
	case w.killed.Load():
		o := s.stoppedAt(w, req.Seq, CodeTimeout, "evaluation cancelled")
		if ctx.Err() == context.DeadlineExceeded {
			o.message = fmt.Sprintf("evaluation did not finish within %s", opts.Timeout)
			o.at, o.pos = s.locateStop(context.WithoutCancel(ctx), files, opts.Timeout, o.at, o.pos)
		}
		return o
	case w.diedOfMemory():
		limit := s.limit
		if l := w.limit.Load(); l > 0 && l < limit {
			limit = l // capped lower by an inherited limit
		}
		o := s.stoppedAt(w, req.Seq, CodeMemory, "evaluation exceeded the memory limit of "+formatBytes(limit))
		o.at, o.pos = s.locateStop(ctx, files, opts.Timeout, o.at, o.pos)
		return o
	default:
		// Neither our kill nor memory: a bug of ours, not a finding.
		return outcome{r: loadResult{err: fmt.Errorf("evaluation worker failed: %v: %s", w.err, w.stderr.firstLine())}}
	}
}

// locateStop narrows where a stopped load was when its progress names no
// entity: before the first (building the data package) or in the
// guardrails (building policies/). Otherwise at and pos stand.
func (s *Sandbox) locateStop(ctx context.Context, files repoFiles, step time.Duration, at string, pos model.Pos) (string, model.Pos) {
	var (
		in  []repoFile
		pkg string
	)
	switch {
	case at == "":
		in, pkg = files.data, "mesh"
	case at == guardrailStage:
		in, pkg = files.guardrails, "guardrails"
	default:
		return at, pos
	}
	if a, p := s.locate(ctx, in, pkg, step); p.IsValid() {
		return a, p
	}
	return at, pos
}

// locate asks a fresh worker where evaluation runs out of memory or time,
// for a load stopped before its first entity (see locate in the worker).
// It returns the last declaration reported before the worker died, or
// before one declaration took longer than step to evaluate; nothing if
// the worker went through every file.
func (s *Sandbox) locate(ctx context.Context, files []repoFile, pkg string, step time.Duration) (string, model.Pos) {
	step = max(min(step, maxLocateStep), 100*time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := sandboxRequest{Data: toWire(files), Locate: pkg}
	go func() {
		t := time.NewTicker(step / 10)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if w := s.busy.Load(); w != nil && time.Since(w.lastAt()) > step {
					cancel()
					return
				}
			}
		}
	}()
	_, w, err := s.call(ctx, &req)
	if err != nil || w == nil {
		return "", model.Pos{}
	}
	if p := w.last.Load(); p != nil && p.Seq == req.Seq {
		return p.At, p.Pos
	}
	return "", model.Pos{}
}

// maxLocateStep bounds how long locate waits for one declaration.
const maxLocateStep = 10 * time.Second

// call sends req to the worker, starting one if none runs, and waits for
// the answer or ctx. When the worker died or was killed on the way, dead
// is that worker (already waited for) and the next call starts another.
// s.mu must be held.
func (s *Sandbox) call(ctx context.Context, req *sandboxRequest) (resp sandboxResponse, dead *worker, err error) {
	if s.w == nil {
		w, err := s.start()
		if err != nil {
			return resp, nil, err
		}
		s.w = w
	}
	w := s.w
	s.seq++
	req.Seq = s.seq
	w.touch()
	s.busy.Store(w)
	defer s.busy.Store(nil)
	ch := make(chan error, 1)
	go func() {
		// A worker that dies while reading the request breaks this
		// write; the read below then sees it die too.
		_ = json.NewEncoder(w.stdin).Encode(req)
		ch <- w.out.Decode(&resp)
	}()
	select {
	case err = <-ch:
	case <-ctx.Done():
		w.kill()
		err = <-ch
	}
	if err == nil {
		s.notePeak(resp.PeakRSS)
		return resp, nil, nil
	}
	<-w.done
	s.w = nil
	return sandboxResponse{}, w, nil
}

// stoppedAt is the outcome of a load the worker did not finish, placed
// where its last progress line of this request said it was.
func (s *Sandbox) stoppedAt(w *worker, seq int64, code, msg string) outcome {
	o := outcome{stopped: true, code: code, message: msg}
	if p := w.last.Load(); p != nil && p.Seq == seq {
		o.at, o.pos = p.At, p.Pos
	}
	return o
}

// diedOfMemory tells a worker that ran out of memory from one that failed
// otherwise: Go's runtime prints "out of memory" (or fails to start a
// thread) when the address space cap refuses it, and the kernel's OOM
// killer sends SIGKILL.
func (w *worker) diedOfMemory() bool {
	if w.killed.Load() {
		return false
	}
	head := w.stderr.String()
	for _, s := range []string{"out of memory", "cannot allocate memory", "newosproc", "failed to create new OS thread"} {
		if strings.Contains(head, s) {
			return true
		}
	}
	var ee *exec.ExitError
	return errors.As(w.err, &ee) && strings.Contains(ee.String(), "killed")
}

// headBuffer keeps the first max bytes written to it: a runtime crash
// prints the reason first and then every goroutine's stack.
type headBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}

func (h *headBuffer) firstLine() string {
	s := strings.TrimSpace(h.String())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// formatBytes prints a size for people: 2 GiB, 256 MiB, 1.6 GiB.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}
