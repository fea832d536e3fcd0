// Package promtest runs a real Prometheus (Debian's prometheus package) for
// tests: its own process with a generated config, a temporary TSDB and a
// free loopback port, scraping the targets the test names every second.
// Debian's package also installs a systemd service; tests never use it.
//
// A machine without the binary skips the test loudly (and records the skip
// in $GITMESH_PROMETHEUS_SKIP_LOG); with GITMESH_REQUIRE_PROMETHEUS=1, as in
// CI, it fails instead.
package promtest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/gitmesh/gitmesh/internal/gittest"
	"github.com/gitmesh/gitmesh/internal/skiplog"
)

const (
	// EnvBinary overrides the prometheus binary (default: prometheus on PATH).
	EnvBinary = "GITMESH_PROMETHEUS"
	// EnvRequire turns a missing binary from a skip into a failure.
	EnvRequire = "GITMESH_REQUIRE_PROMETHEUS"
	// EnvSkipLog names a file each skip is appended to.
	EnvSkipLog = "GITMESH_PROMETHEUS_SKIP_LOG"
	// ScrapeInterval is how often the test Prometheus scrapes: short, so a
	// rate over a few seconds has several samples.
	ScrapeInterval = time.Second
)

// Prometheus is a running test Prometheus.
type Prometheus struct {
	// URL is its HTTP API, http://127.0.0.1:PORT.
	URL string
	API promv1.API
	log string
}

// Binary finds prometheus or skips (fails under EnvRequire) the test.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := lookup()
	if err != nil {
		why := fmt.Sprintf("%v: apt-get install prometheus (or set %s)", err, EnvBinary)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s: cannot run a real Prometheus, and %s=1: %s", t.Name(), EnvRequire, why)
		}
		msg := fmt.Sprintf("%s: SKIPPED: %s", t.Name(), why)
		skiplog.Record(EnvSkipLog, msg)
		t.Skip(msg)
	}
	return bin
}

func lookup() (string, error) {
	if bin := os.Getenv(EnvBinary); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("no prometheus at %s (from %s)", bin, EnvBinary)
		}
		return bin, nil
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("no prometheus binary on PATH")
	}
	return bin, nil
}

// Target is one scrape target.
type Target struct {
	// Job is Prometheus' job label; targets of one job share Path.
	Job string
	// Addr is host:port.
	Addr string
	// Path is the metrics path, /metrics when empty.
	Path string
}

// Start runs Prometheus scraping targets and returns once its API answers.
// It stops when the test ends.
func Start(t testing.TB, targets ...Target) *Prometheus {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	yml, err := config(targets)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	port := gittest.FreePort(t)
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// The child dies with the test binary, so a killed run leaves none.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	c, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://" + addr, API: promv1.NewAPI(c), log: logPath}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := p.API.Buildinfo(ctx)
		cancel()
		if err == nil {
			return p
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited: %v\n%s", cmd.ProcessState, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not answer within 30s: %v\n%s", err, p.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log is Prometheus' output so far.
func (p *Prometheus) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// WaitForTargets waits until every configured target has been scraped and
// is up.
func (p *Prometheus) WaitForTargets(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := p.API.Targets(ctx)
		cancel()
		if err == nil && len(res.Active) > 0 {
			down := []string{}
			for _, a := range res.Active {
				if a.Health != promv1.HealthGood {
					down = append(down, fmt.Sprintf("%s %s (%s)", a.ScrapeURL, a.Health, a.LastError))
				}
			}
			if len(down) == 0 {
				return
			}
			last = strings.Join(down, "; ")
		} else if err != nil {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus targets not up after %v: %s\n%s", timeout, last, p.Log())
}

// Query runs an instant query now.
func (p *Prometheus) Query(ctx context.Context, expr string) (model.Vector, error) {
	v, _, _, err := p.API.Query(ctx, expr, time.Now())
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: got a %s, want a vector", expr, v.Type())
	}
	return vec, nil
}

// config is the prometheus.yml for targets, one scrape config per job in
// name order.
func config(targets []Target) (string, error) {
	type job struct {
		path  string
		addrs []string
	}
	jobs := map[string]*job{}
	for _, tg := range targets {
		path := cmp.Or(tg.Path, "/metrics")
		j := jobs[tg.Job]
		if j == nil {
			j = &job{path: path}
			jobs[tg.Job] = j
		}
		if j.path != path {
			return "", fmt.Errorf("job %q: targets with paths %q and %q: use two jobs", tg.Job, j.path, path)
		}
		j.addrs = append(j.addrs, strconv.Quote(tg.Addr))
	}
	var b strings.Builder
	iv := model.Duration(ScrapeInterval).String()
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\nscrape_configs:\n", iv, iv, iv)
	for _, name := range slices.Sorted(maps.Keys(jobs)) {
		j := jobs[name]
		fmt.Fprintf(&b, "  - job_name: %q\n    metrics_path: %q\n    static_configs:\n      - targets: [%s]\n",
			name, j.path, strings.Join(j.addrs, ", "))
	}
	return b.String(), nil
}
