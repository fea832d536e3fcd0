package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/drift"
)

type fakeStatus struct{ st apiv1.Status }

func (f fakeStatus) Status() apiv1.Status { return f.st }
func (f fakeStatus) Ready() bool          { return f.st.Ready }

type fakeProxies struct{}

func (fakeProxies) Proxies() []apiv1.Proxy        { return nil }
func (fakeProxies) Rejections() []apiv1.Rejection { return nil }
func (fakeProxies) RejectionsDropped() int64      { return 0 }

type fakeDrift struct{ p apiv1.DriftPublish }

func (fakeDrift) Report() *drift.Report         { return nil }
func (f fakeDrift) Publish() apiv1.DriftPublish { return f.p }

func get(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestStatusDocuments: /api/v1/status carries the reconciler's status plus
// Kubernetes' health and the drift publish state in one apiv1.Status, and
// /api/v1/proxies names the live revision and lists empty as [], not null.
func TestStatusDocuments(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	live := &apiv1.Revision{ID: "0123456789abcdef0123456789abcdef01234567", Short: "0123456789ab", AppliedAt: at}
	kube := &apiv1.Kubernetes{Synced: true, Reachable: true, LastEvent: at,
		Leader: &apiv1.Leader{Identity: "pod-a", Leading: true, Holder: "pod-a"}}
	pub := apiv1.DriftPublish{Enabled: true, Leader: true, Path: "status/c.yaml", LastCommit: "c0ffee", LastCommitAt: at}
	h := Handler(Options{
		Status:     fakeStatus{apiv1.Status{Source: "git", Ready: true, Live: live, Classes: 2, Resources: 9}},
		Proxies:    fakeProxies{},
		Drift:      fakeDrift{pub},
		Kubernetes: func() *apiv1.Kubernetes { return kube },
	})
	var st apiv1.Status
	get(t, h, "/api/v1/status", &st)
	want := apiv1.Status{Source: "git", Ready: true, Live: live, Classes: 2, Resources: 9, Kubernetes: kube, Drift: &pub}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("status = %+v\nwant %+v", st, want)
	}
	var raw map[string]any
	get(t, h, "/api/v1/proxies", &raw)
	if raw["revision"] != live.ID || raw["proxies"] == nil || raw["rejections"] == nil {
		t.Errorf("proxies = %v, want revision %s and empty lists", raw, live.ID)
	}
}
