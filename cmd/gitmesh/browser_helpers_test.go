package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gitmesh/gitmesh/internal/skiplog"
)

// chromium finds Debian's headless Chromium. Without it the browser tests
// skip loudly (and record the skip in $GITMESH_BROWSER_SKIP_LOG), unless
// GITMESH_REQUIRE_BROWSER=1, as in CI, which installs it: then they fail.
func chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: the console's browser tests cannot run; apt-get install chromium (CI sets GITMESH_REQUIRE_BROWSER=1)"
	if os.Getenv("GITMESH_REQUIRE_BROWSER") == "1" {
		tb.Fatal(msg)
	}
	skiplog.Record("GITMESH_BROWSER_SKIP_LOG", tb.Name()+": "+msg)
	tb.Skip("SKIPPED: " + msg)
	return ""
}

// page is one headless Chromium tab that records what the console must
// never do: write errors or warnings to the console, throw, or send a
// request anywhere but loopback.
type page struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string
	requests int
}

// newPage starts Chromium (killed when the test ends) with one tab.
func newPage(tb testing.TB) *page {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(tb)), chromedp.WindowSize(1400, 900), chromedp.DisableGPU,
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("mute-audio", true))
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox (CI runs as root).
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	p := &page{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case "error", "warning", "assert", chromedp.ConsoleException:
				p.note(fmt.Sprintf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.requests++
			p.mu.Unlock()
			if !loopback(ev.Request.URL) {
				p.note("request left loopback: " + ev.Request.Method + " " + ev.Request.URL)
			} else if ev.Request.Method != "GET" {
				p.note("the console sent " + ev.Request.Method + " " + ev.Request.URL)
			}
		}
	}()
	return p
}

func (p *page) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, s)
}

// check fails the test for every problem seen so far; requests must have
// been seen at all, or the watch itself is broken.
func (p *page) check(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.problems {
		tb.Error(s)
	}
	if p.requests == 0 {
		tb.Error("no request seen: the network watch is not working")
	}
}

// loopback reports whether a request stays on this machine: loopback
// hosts, or data: URLs.
func loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Scheme == "data" {
		return true
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

func (p *page) do(tb testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.Fatal(err)
	}
}

// eval returns a JavaScript expression's value.
func eval[T any](tb testing.TB, p *page, expr string) T {
	tb.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitTrue polls a JavaScript expression until it is true.
func (p *page) waitTrue(tb testing.TB, what, expr string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		tb.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// screenshot saves the viewport as a PNG under $GITMESH_ARTIFACTS (CI
// keeps it) or the test's temporary directory, and logs where.
func (p *page) screenshot(tb testing.TB, name string) string {
	tb.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("GITMESH_ARTIFACTS")
	if dir == "" {
		dir = tb.TempDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(tb.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot: %s", path)
	return path
}
