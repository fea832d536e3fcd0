package promtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStartScrapes runs the real Prometheus against one target and reads
// back the value it scraped.
func TestStartScrapes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("# TYPE promtest_answer gauge\npromtest_answer 42\n"))
	}))
	defer srv.Close()
	p := Start(t, Target{Job: "answer", Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/anything"})
	p.WaitForTargets(t, 20*time.Second)
	vec, err := p.Query(context.Background(), `promtest_answer{job="answer"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 1 || vec[0].Value != 42 {
		t.Fatalf("promtest_answer = %v, want one sample of 42", vec)
	}
}

func TestConfigRejectsTwoPathsInOneJob(t *testing.T) {
	_, err := config([]Target{{Job: "a", Addr: "x:1"}, {Job: "a", Addr: "x:2", Path: "/stats/prometheus"}})
	if err == nil {
		t.Fatal("config accepted two metrics paths in one job")
	}
}
