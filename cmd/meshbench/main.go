// Command meshbench measures the whole gitmesh control plane under load:
// a generated mesh (internal/meshgen) goes through the real pipeline —
// pipeline.Run (load → policies → render) → Bundle.Update →
// xds.Server.Apply — and is served over gRPC on loopback to M ADS streams
// that behave like proxies (internal/adsload), run in a child process so
// that the control plane's CPU time and peak RSS are measured alone.
//
// It reports, as one JSON line on stdout, the time until every stream holds
// and has ACKed its complete configuration, then the push latency of a
// one-service route weight change to the streams it concerns, with the
// resources and bytes that took.
//
//	go run ./cmd/meshbench -services 1000 -streams 1000 -mode delta
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		if err := runChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "meshbench load client:", err)
			os.Exit(1)
		}
		return
	}
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if err := m.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

// childFlag, as the first argument, makes the binary the load client.
const childFlag = "-load-client"

// options are the command-line flags.
type options struct {
	services, streams, callees, conns, proxylessEvery, change int
	mode, changeVia                                           string
	unscoped                                                  bool
	seed                                                      int64
	timeout, quiet                                            time.Duration
	cpuprofile, changeProfile, clientProfile, memprofile      string
	changeClientProfile                                       string
	verbose, reuseUnchanged                                   bool
}

// Main is the tool's wiring, kept apart from main so that tests run the
// real thing in-process (only the load client is a child process).
type Main struct {
	Stdout, Stderr io.Writer
	// Exe is the binary re-executed as the load client; empty means
	// os.Executable().
	Exe string

	opts options
	log  *slog.Logger
}

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("meshbench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	o := &m.opts
	fs.IntVar(&o.services, "services", 1000, "services in the generated mesh")
	fs.IntVar(&o.streams, "streams", 1000, "ADS streams (simulated proxies)")
	fs.StringVar(&o.mode, "mode", "delta", "xDS protocol variant: sotw or delta")
	fs.BoolVar(&o.unscoped, "unscoped", false, "leave out dependsOn: every proxy sees every service")
	fs.IntVar(&o.callees, "callees", 5, "services each service depends on")
	fs.Int64Var(&o.seed, "seed", 1, "meshgen seed")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "give up after this long")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write the control plane's CPU profile, from the first Apply on, to this file")
	fs.StringVar(&o.changeProfile, "change-cpuprofile", "", "write the control plane's CPU profile of the change alone (from just before the edit until every affected stream has it) to this file; not with -cpuprofile")
	fs.StringVar(&o.changeClientProfile, "change-client-cpuprofile", "", "write the load client's CPU profile of the change alone to this file; not with -client-cpuprofile")
	fs.StringVar(&o.memprofile, "memprofile", "", "write the control plane's heap profile, once every stream converged, to this file")
	fs.StringVar(&o.clientProfile, "client-cpuprofile", "", "write the load client's CPU profile to this file")
	fs.IntVar(&o.conns, "conns", 0, "gRPC connections the streams share; 0 means one per stream, as proxies have")
	fs.IntVar(&o.proxylessEvery, "proxyless-every", 0, "make every k-th service proxyless (grpc-go style streams); 0 means none")
	fs.IntVar(&o.change, "change", -1, "index of the service whose weights change; -1 means services/2")
	fs.StringVar(&o.changeVia, "change-via", "dir", "how the change reaches the server: dir (write the service's CUE file in a directory a Reconciler serves, timed from the write) or apply (the tool's own pipeline run and Apply, timed from the Apply)")
	fs.DurationVar(&o.quiet, "quiet", 300*time.Millisecond, "pause before the change, and after it for stray pushes")
	fs.BoolVar(&o.reuseUnchanged, "reuse-unchanged", false, "report how many classes the change's update leaves unchanged (same content version), which Apply skips in O(1)")
	fs.BoolVar(&o.verbose, "v", false, "log the xDS server at info level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		err := fmt.Errorf("unexpected arguments %q", fs.Args())
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	case o.mode != "sotw" && o.mode != "delta":
		err := fmt.Errorf("-mode %q: want \"sotw\" or \"delta\"", o.mode)
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	case o.changeVia != "dir" && o.changeVia != "apply":
		err := fmt.Errorf("-change-via %q: want \"dir\" or \"apply\"", o.changeVia)
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	case o.cpuprofile != "" && o.changeProfile != "":
		err := errors.New("-cpuprofile and -change-cpuprofile: one CPU profile at a time")
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	case o.clientProfile != "" && o.changeClientProfile != "":
		err := errors.New("-client-cpuprofile and -change-client-cpuprofile: one CPU profile at a time")
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	case o.services < 1 || o.streams < 1:
		err := errors.New("-services and -streams must be at least 1")
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	}
	if o.change < 0 {
		o.change = o.services / 2
	}
	if o.change >= o.services {
		err := fmt.Errorf("-change %d: only %d services", o.change, o.services)
		fmt.Fprintln(m.Stderr, "meshbench:", err)
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	m.log = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// Result is the JSON line the tool prints. Times are milliseconds, sizes
// bytes, memory MiB; "control plane" is this process, "client" the child.
type Result struct {
	Services int    `json:"services"`
	Streams  int    `json:"streams"`
	Classes  int    `json:"classes"`
	Mode     string `json:"mode"`
	Scoped   bool   `json:"scoped"`
	Conns    int    `json:"conns"`

	LoadMS     float64 `json:"load_ms"`
	CheckMS    float64 `json:"check_ms"`
	RenderMS   float64 `json:"render_ms"`
	ToUpdateMS float64 `json:"to_update_ms"` // Bundle.Update: ~0 since render emits the snapshot; kept for comparable output
	ApplyMS    float64 `json:"apply_ms"`

	// FullConvergenceMS: first Apply → every stream holds and has ACKed
	// exactly its complete configuration.
	FullConvergenceMS float64 `json:"full_convergence_ms"`
	FullP50MS         float64 `json:"full_p50_ms"`
	Converged         int     `json:"converged_streams"`
	ResourcesPerProxy float64 `json:"resources_per_stream"`
	BytesSentFull     int64   `json:"bytes_sent_full"`
	BytesPerStream    int64   `json:"bytes_per_stream_full"`

	// The one-service weight change: reload (load+check+render+Bundle.Update of
	// the edited revision), Apply, then per affected stream the time from
	// Apply until it holds the changed resources (change_p50_ms …).
	//
	// ChangeVia "dir" serves the mesh the way `gitmesh serve --dir` does: it
	// is written to a directory that a DirSource watches and a Reconciler
	// serves into the xDS server, whose first Apply starts the full
	// convergence, and the change is a write of the service's CUE file.
	// Then ChangeWrite* are per affected stream the time from the file write
	// until it holds the changed resources (pickup, reload, Apply and push:
	// the figure an operator sees), ChangePickupMS the time from the write
	// until the Reconciler's Apply started and ChangeApplyMS that Apply; the
	// tool's own pipeline runs (load_ms …, ChangeReload*MS) are made before
	// serving, for the expectations, and their CPU counts as harness.
	// ChangeVia "apply" has the tool Apply its own pipeline runs.
	ChangeVia        string  `json:"change_via"`
	ChangeWriteP50MS float64 `json:"change_write_p50_ms,omitempty"`
	ChangeWriteP99MS float64 `json:"change_write_p99_ms,omitempty"`
	ChangeWriteMaxMS float64 `json:"change_write_max_ms,omitempty"`
	ChangePickupMS   float64 `json:"change_pickup_ms,omitempty"`
	// ChangeWatchMS is the write until the Reconciler started its attempt
	// (the directory watch's latency), ChangeStepsMS that attempt's steps.
	ChangeWatchMS            float64            `json:"change_watch_ms,omitempty"`
	ChangeStepsMS            map[string]float64 `json:"change_reconcile_steps_ms,omitempty"`
	ChangeService            string             `json:"change_service"`
	ChangeReloadMS           float64            `json:"change_reload_ms"`
	ChangeLoadMS             float64            `json:"change_load_ms"`
	ChangeRenderMS           float64            `json:"change_render_ms"`
	ChangeApplyMS            float64            `json:"change_apply_ms"`
	ChangeP50MS              float64            `json:"change_p50_ms"`
	ChangeP99MS              float64            `json:"change_p99_ms"`
	ChangeMaxMS              float64            `json:"change_max_ms"`
	ChangeStreams            int                `json:"change_streams"`
	ChangeStreamsExpected    int                `json:"change_streams_expected"`
	ChangeResourcesPerStream float64            `json:"change_resources_per_stream"`
	ChangeResourcesExpected  float64            `json:"change_resources_expected"`
	UnaffectedPushes         int                `json:"unaffected_pushes"`
	ReusedClasses            int                `json:"reused_classes,omitempty"`
	BytesSentChange          int64              `json:"bytes_sent_change"`

	// CPUSeconds is the whole control-plane process (pipeline and
	// serving) minus HarnessCPUSeconds, the tool's own expectation work.
	CPUSeconds        float64 `json:"cpu_seconds"`
	HarnessCPUSeconds float64 `json:"harness_cpu_seconds"`
	CPUFullSeconds    float64 `json:"cpu_full_seconds"`
	CPUChangeSeconds  float64 `json:"cpu_change_seconds"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
	// PeakRSSPipelineMB is the peak before serving: generating, loading,
	// checking and rendering the first revision.
	PeakRSSPipelineMB float64 `json:"peak_rss_pipeline_mb"`
	RSSConvergedMB    float64 `json:"rss_converged_mb"`
	ClientCPUSeconds  float64 `json:"client_cpu_seconds"`
	ClientPeakRSSMB   float64 `json:"client_peak_rss_mb"`
	StreamErrors      int     `json:"stream_errors"`
	Error             string  `json:"error,omitempty"`
}

// Run runs the benchmark and prints the result. A run that times out or
// leaves streams unconverged still prints what it measured, then fails.
func (m *Main) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.timeout)
	defer cancel()
	res, err := m.bench(ctx)
	if err != nil {
		res.Error = err.Error()
	}
	b, jerr := json.Marshal(res)
	if jerr != nil {
		return errors.Join(err, jerr)
	}
	fmt.Fprintln(m.Stdout, string(b))
	return err
}

func durations(ats []time.Time, from time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(ats))
	for _, at := range ats {
		out = append(out, at.Sub(from))
	}
	slices.Sort(out)
	return out
}
