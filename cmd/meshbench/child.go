package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/gitmesh/gitmesh/internal/adsload"
)

// The load client runs in a child process (this binary re-executed with
// -load-client) so that the control plane's CPU time and peak RSS are its
// own. Parent and child talk in JSON lines: commands on the child's stdin,
// replies and events on its stdout.

// command is one parent → child line.
type command struct {
	// Op is "dial" (Config), "start" (Targets), "phase" (Targets),
	// "totals" (Phase).
	Op      string          `json:"op"`
	Config  *adsload.Config `json:"config,omitempty"`
	Targets []uint64        `json:"targets,omitempty"`
	Phase   int             `json:"phase,omitempty"`
	// CPUProfile, with "dial", profiles the load client into this file;
	// with "phase", from the phase's start until "stop-profile".
	CPUProfile string `json:"cpuprofile,omitempty"`
}

// reply is one child → parent line: a reply to a command ("ready",
// "phase", "totals", "error") or a stream event ("sync", "stream-error").
type reply struct {
	Kind      string `json:"kind"`
	Stream    int    `json:"stream,omitempty"`
	Phase     int    `json:"phase,omitempty"`
	AtNanos   int64  `json:"at,omitempty"`
	Responses int64  `json:"responses,omitempty"`
	Resources int64  `json:"resources,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	Error     string `json:"error,omitempty"`
}

// runChild is the child's main: it serves commands until stdin closes.
func runChild(stdin io.Reader, stdout io.Writer) error {
	out := bufio.NewWriter(stdout)
	var mu sync.Mutex
	send := func(r reply) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(r)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	var d *adsload.Driver
	stopPhaseProfile := func() {}
	defer func() {
		stopPhaseProfile()
		if d != nil {
			d.Close()
		}
	}()
	dec := json.NewDecoder(stdin)
	for {
		var c command
		if err := dec.Decode(&c); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("load client: read command: %w", err)
		}
		switch c.Op {
		case "dial":
			if c.CPUProfile != "" {
				stop, err := startProfile(c.CPUProfile)
				if err != nil {
					send(reply{Kind: "error", Error: err.Error()})
					return err
				}
				defer stop()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var err error
			d, err = adsload.Dial(ctx, *c.Config, func(ev adsload.Event) {
				r := reply{Kind: "sync", Stream: ev.Stream, Phase: ev.Phase, AtNanos: ev.At.UnixNano(),
					Responses: int64(ev.Responses), Resources: int64(ev.Resources), Bytes: int64(ev.Bytes)}
				if ev.Err != nil {
					r.Kind, r.Error = "stream-error", ev.Err.Error()
				}
				send(r)
			})
			cancel()
			if err != nil {
				send(reply{Kind: "error", Error: err.Error()})
				return err
			}
			send(reply{Kind: "ready"})
		case "start":
			d.Start(c.Targets)
		case "phase":
			if c.CPUProfile != "" {
				stop, err := startProfile(c.CPUProfile)
				if err != nil {
					send(reply{Kind: "error", Error: err.Error()})
					continue
				}
				stopPhaseProfile = stop
			}
			n, err := d.NextPhase(c.Targets)
			if err != nil {
				send(reply{Kind: "error", Error: err.Error()})
				continue
			}
			send(reply{Kind: "phase", Phase: n})
		case "stop-profile":
			stopPhaseProfile()
			stopPhaseProfile = func() {}
		case "totals":
			t := d.Totals(c.Phase)
			send(reply{Kind: "totals", Phase: c.Phase, Responses: t.Responses, Resources: t.Resources, Bytes: t.Bytes})
		default:
			send(reply{Kind: "error", Error: fmt.Sprintf("unknown command %q", c.Op)})
		}
	}
}

// client is the parent's handle on the child process.
type client struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	enc    *json.Encoder
	events chan reply // sync and stream-error events
	other  chan reply // replies to commands
	done   chan struct{}
}

// startClient re-executes this binary as the load client.
func startClient(exe string, args ...string) (*client, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start load client: %w", err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start load client: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start load client %s: %w", exe, err)
	}
	c := &client{cmd: cmd, in: in, enc: json.NewEncoder(in),
		events: make(chan reply, 1<<16), other: make(chan reply, 16), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(outp)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r reply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				fmt.Fprintf(os.Stderr, "meshbench: load client said %q\n", sc.Text())
				continue
			}
			if r.Kind == "sync" || r.Kind == "stream-error" {
				c.events <- r
			} else {
				c.other <- r
			}
		}
	}()
	return c, nil
}

func (c *client) send(cmd command) error {
	if err := c.enc.Encode(cmd); err != nil {
		return fmt.Errorf("load client: send %s: %w", cmd.Op, err)
	}
	return nil
}

// await waits for the reply of kind to a command.
func (c *client) await(ctx context.Context, kind string) (reply, error) {
	select {
	case r := <-c.other:
		if r.Kind == "error" {
			return r, fmt.Errorf("load client: %s", r.Error)
		}
		if r.Kind != kind {
			return r, fmt.Errorf("load client: got %q, want %q", r.Kind, kind)
		}
		return r, nil
	case <-c.done:
		return reply{}, errors.New("load client exited")
	case <-ctx.Done():
		return reply{}, fmt.Errorf("load client: waiting for %q: %w", kind, ctx.Err())
	}
}

// close ends the child and returns its resource usage.
func (c *client) close() (cpuSeconds, peakRSSMB float64) {
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		cpuSeconds = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
		peakRSSMB = float64(ru.Maxrss) / 1024
	}
	return cpuSeconds, peakRSSMB
}

// startProfile writes a CPU profile to path until the returned stop.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
