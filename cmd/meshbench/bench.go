package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitmesh/gitmesh/internal/adsload"
	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/schema"
)

const sentBytesMetric = "gitmesh_xds_sent_bytes_total"

// bench runs the scenario; the Result holds whatever was measured before
// an error.
func (m *Main) bench(ctx context.Context) (res Result, err error) {
	o := m.opts
	res = Result{Services: o.services, Streams: o.streams, Mode: o.mode, Scoped: !o.unscoped,
		Conns: o.conns, ChangeService: meshgen.ServiceName(o.change), ChangeVia: o.changeVia}
	if res.Conns <= 0 || res.Conns > o.streams {
		res.Conns = o.streams
	}
	cpuStart := cpuSeconds()
	harness := 0.0 // CPU spent computing expectations: the tool's, not the control plane's
	defer func() {
		res.HarnessCPUSeconds = round(harness, 3)
		res.CPUSeconds = round(cpuSeconds()-cpuStart-harness, 3)
	}()

	fsys, err := generate(o)
	if err != nil {
		return res, err
	}
	dir := o.changeVia == "dir"
	cache := schema.NewCache()
	h := cpuSeconds()
	r1, err := buildRevision(ctx, "r1", fsys, cache)
	if dir {
		harness += cpuSeconds() - h // the Reconciler runs the pipeline that is served
	}
	if err != nil {
		return res, err
	}
	res.LoadMS, res.CheckMS, res.RenderMS, res.ToUpdateMS = r1.loadMS, r1.checkMS, r1.renderMS, r1.updateMS
	res.Classes = len(r1.bundle.Classes())
	res.PeakRSSPipelineMB = round(procStatusMB("VmHWM"), 1)
	streams := planStreams(r1.bundle, o.streams)
	exp := adsload.NewExpecter()
	h = cpuSeconds()
	ex1, err := expect(exp, streams, r1.update, nil)
	harness += cpuSeconds() - h
	if err != nil {
		return res, err
	}
	var ch *change
	if dir {
		// Everything the tool needs of both revisions is computed now and
		// their bundles dropped, so that what is measured from here on is
		// the Reconciler's pipeline and the server, as in `gitmesh serve`.
		h = cpuSeconds()
		ch, _, err = m.prepareChange(ctx, &res, exp, streams, fsys, cache, r1, ex1)
		harness += cpuSeconds() - h
		if err != nil {
			return res, err
		}
		r1, cache = nil, nil
		runtime.GC()
		debug.FreeOSMemory()
	}

	reg := prometheus.NewRegistry()
	srv, err := xds.New(xds.Options{Logger: m.log, Registerer: reg})
	if err != nil {
		return res, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("listen: %w", err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(srvCtx, lis) }()
	defer func() { stopSrv(); <-srvDone }()

	exe := m.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return res, fmt.Errorf("find own executable: %w", err)
		}
	}
	cl, err := startClient(exe, childFlag)
	if err != nil {
		return res, err
	}
	defer func() {
		c, r := cl.close()
		res.ClientCPUSeconds, res.ClientPeakRSSMB = round(c, 3), round(r, 1)
	}()
	cfg := &adsload.Config{Addr: lis.Addr().String(), Delta: o.mode == "delta", Conns: o.conns, Streams: streams}
	if err := cl.send(command{Op: "dial", Config: cfg, CPUProfile: o.clientProfile}); err != nil {
		return res, err
	}
	if _, err := cl.await(ctx, "ready"); err != nil {
		return res, err
	}

	if o.cpuprofile != "" {
		stop, err := startProfile(o.cpuprofile)
		if err != nil {
			return res, err
		}
		defer stop()
	}

	// Full convergence: Apply the first revision (the tool, or the
	// Reconciler serving the directory), then open the streams on the
	// already connected channels.
	var served *dirServe
	cpu0 := cpuSeconds()
	t0 := time.Now()
	if dir {
		if served, err = startDirServe(ctx, fsys, srv, m.log); err != nil {
			return res, err
		}
		defer served.stop()
		first, _ := served.applier.since(time.Time{})
		cpu0, t0 = cpuSeconds(), first.start // its load and render come before, as in the other mode
		res.ApplyMS = ms(first.took)
	} else {
		if err := srv.Apply(r1.update); err != nil {
			return res, fmt.Errorf("apply r1: %w", err)
		}
		res.ApplyMS = ms(time.Since(t0))
	}
	if err := cl.send(command{Op: "start", Targets: ex1.digests}); err != nil {
		return res, err
	}
	all := make([]bool, len(streams))
	for i := range all {
		all[i] = true
	}
	got, errs, err := m.collect(ctx, cl, 1, all, 0)
	res.StreamErrors += errs
	res.Converged = len(got)
	ats := make([]time.Time, 0, len(got))
	total := 0
	for _, r := range got {
		ats = append(ats, time.Unix(0, r.AtNanos))
	}
	for _, n := range ex1.counts {
		total += n
	}
	res.ResourcesPerProxy = round(float64(total)/float64(len(streams)), 1)
	ds := durations(ats, t0)
	res.FullP50MS = percentile(ds, 50)
	if len(ds) > 0 {
		res.FullConvergenceMS = ms(ds[len(ds)-1])
	}
	res.CPUFullSeconds = round(cpuSeconds()-cpu0, 3)
	res.RSSConvergedMB = round(procStatusMB("VmRSS"), 1)
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			return res, err
		}
	}
	res.BytesSentFull = int64(counterSum(reg, sentBytesMetric))
	res.BytesPerStream = res.BytesSentFull / int64(len(streams))
	if err != nil {
		return res, fmt.Errorf("full convergence: %d of %d streams: %w", len(got), len(streams), err)
	}
	sleep(ctx, o.quiet)

	// The one-service change, through the same pipeline.
	if !dir {
		var expectCPU float64
		ch, expectCPU, err = m.prepareChange(ctx, &res, exp, streams, fsys, cache, r1, ex1)
		harness += expectCPU
		if err != nil {
			return res, err
		}
	}
	affected := ch.affected
	if err := cl.send(command{Op: "phase", Targets: ch.ex.digests, CPUProfile: o.changeClientProfile}); err != nil {
		return res, err
	}
	if _, err := cl.await(ctx, "phase"); err != nil {
		return res, err
	}
	bytes0 := counterSum(reg, sentBytesMetric)
	stopChangeProfile := func() {}
	if o.changeProfile != "" {
		if stopChangeProfile, err = startProfile(o.changeProfile); err != nil {
			return res, err
		}
	}
	cpu1 := cpuSeconds()
	var tA, tW time.Time
	if dir {
		path := meshgen.ServiceFile(o.change)
		if tW, err = served.write(path, ch.files[path].Data); err != nil {
			return res, err
		}
	} else {
		tA = time.Now()
		if err := srv.Apply(ch.r2.update); err != nil {
			return res, fmt.Errorf("apply r2: %w", err)
		}
		res.ChangeApplyMS = ms(time.Since(tA))
	}
	got, errs, err = m.collect(ctx, cl, 2, affected, o.quiet)
	stopChangeProfile()
	if o.changeClientProfile != "" {
		if err := cl.send(command{Op: "stop-profile"}); err != nil {
			return res, err
		}
	}
	res.StreamErrors += errs
	if dir {
		ap, ok := served.applier.since(tW)
		for i := 0; !ok && i < 100 && ctx.Err() == nil; i++ { // an Apply still returning
			sleep(ctx, 10*time.Millisecond)
			ap, ok = served.applier.since(tW)
		}
		if !ok {
			return res, errors.Join(err, errors.New("change: the Reconciler applied nothing after the write"))
		}
		if ap.err != nil {
			return res, errors.Join(err, fmt.Errorf("change: the Reconciler's apply: %w", ap.err))
		}
		tA = ap.start
		res.ChangeApplyMS, res.ChangePickupMS = ms(ap.took), ms(tA.Sub(tW))
		if started, steps := served.lastAttempt(); !started.Before(tW) {
			res.ChangeWatchMS, res.ChangeStepsMS = ms(started.Sub(tW)), steps
		}
	}
	ats = ats[:0]
	resources := 0
	for i, r := range got {
		if !affected[i] {
			res.UnaffectedPushes++
			continue
		}
		res.ChangeStreams++
		resources += int(r.Resources)
		ats = append(ats, time.Unix(0, r.AtNanos))
	}
	if dir {
		dw := durations(ats, tW)
		res.ChangeWriteP50MS, res.ChangeWriteP99MS = percentile(dw, 50), percentile(dw, 99)
		if len(dw) > 0 {
			res.ChangeWriteMaxMS = ms(dw[len(dw)-1])
		}
	}
	ds = durations(ats, tA)
	res.ChangeP50MS, res.ChangeP99MS = percentile(ds, 50), percentile(ds, 99)
	if len(ds) > 0 {
		res.ChangeMaxMS = ms(ds[len(ds)-1])
	}
	if res.ChangeStreams > 0 {
		res.ChangeResourcesPerStream = round(float64(resources)/float64(res.ChangeStreams), 2)
	}
	res.CPUChangeSeconds = round(cpuSeconds()-cpu1, 3)
	res.BytesSentChange = int64(counterSum(reg, sentBytesMetric) - bytes0)
	res.PeakRSSMB = round(procStatusMB("VmHWM"), 1)
	if err != nil {
		return res, fmt.Errorf("change: %d of %d affected streams: %w", res.ChangeStreams, res.ChangeStreamsExpected, err)
	}
	if res.ChangeStreams != res.ChangeStreamsExpected {
		return res, fmt.Errorf("change: %d of %d affected streams got it", res.ChangeStreams, res.ChangeStreamsExpected)
	}
	return res, nil
}

// collect gathers phase's sync events until every wanted stream reported,
// then keeps listening for linger (stray pushes to other streams). It
// returns the first sync event of each stream and the number of stream
// errors.
func (m *Main) collect(ctx context.Context, cl *client, phase int, want []bool, linger time.Duration) (map[int]reply, int, error) {
	got := map[int]reply{}
	need := 0
	for _, w := range want {
		if w {
			need++
		}
	}
	errs, have := 0, 0
	var lingerC <-chan time.Time
	if need == 0 {
		lingerC = time.After(linger)
	}
	for {
		select {
		case r := <-cl.events:
			if r.Kind == "stream-error" {
				errs++
				if errs <= 5 {
					m.log.Warn("stream error", "stream", r.Stream, "err", r.Error)
				}
				continue
			}
			if r.Phase != phase {
				continue
			}
			if _, dup := got[r.Stream]; dup {
				continue
			}
			got[r.Stream] = r
			if r.Stream < len(want) && want[r.Stream] {
				have++
				if have == need {
					if linger <= 0 {
						return got, errs, nil
					}
					lingerC = time.After(linger)
				}
			}
		case <-lingerC:
			return got, errs, nil
		case <-cl.done:
			return got, errs, errors.New("load client exited")
		case <-ctx.Done():
			return got, errs, ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// change is the one-service edit, prepared: the edited files, the edited
// revision (nil once dropped) and what every stream must then hold.
type change struct {
	files    fstest.MapFS
	r2       *revision
	ex       expectation
	affected []bool
}

// prepareChange edits the weights, runs the edit through the pipeline
// (ChangeReload*MS) and computes the streams' expectations.
func (m *Main) prepareChange(ctx context.Context, res *Result, exp *adsload.Expecter, streams []adsload.Stream,
	fsys fstest.MapFS, cache *schema.Cache, r1 *revision, ex1 expectation) (ch *change, expectCPU float64, err error) {
	o := m.opts
	fs2, err := editWeights(fsys, o.change)
	if err != nil {
		return nil, expectCPU, err
	}
	t := time.Now()
	r2, err := buildRevision(ctx, "r2", fs2, cache)
	if err != nil {
		return nil, expectCPU, err
	}
	if o.reuseUnchanged {
		res.ReusedClasses = reuseUnchanged(r1, r2)
	}
	res.ChangeReloadMS = ms(time.Since(t))
	res.ChangeLoadMS, res.ChangeRenderMS = r2.loadMS, r2.renderMS
	h := cpuSeconds()
	ex2, err := expect(exp, streams, r2.update, &r1.update)
	expectCPU = cpuSeconds() - h
	if err != nil {
		return nil, expectCPU, err
	}
	ch = &change{files: fs2, r2: r2, ex: ex2, affected: make([]bool, len(streams))}
	changed := 0
	for i := range streams {
		if ex2.digests[i] != ex1.digests[i] {
			ch.affected[i] = true
			res.ChangeStreamsExpected++
			changed += ex2.counts[i]
		}
	}
	if res.ChangeStreamsExpected > 0 {
		res.ChangeResourcesExpected = round(float64(changed)/float64(res.ChangeStreamsExpected), 2)
	}
	if o.changeVia == "dir" {
		ch.r2 = nil // the Reconciler renders its own
	}
	return ch, expectCPU, nil
}
