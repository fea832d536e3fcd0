package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/reconciler/api"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// assertRoundTrip fetches url, decodes the body into v (the type `gitmesh
// status` decodes it into), re-encodes it and fails unless the two JSON
// documents are equal: a field the API serves and the type lacks would be
// dropped here.
func assertRoundTrip(t *testing.T, url string, v any) {
	t.Helper()
	code, body := httpGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var served, decoded any
	if err := json.Unmarshal([]byte(body), &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &decoded); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(served, decoded) {
		t.Fatalf("GET %s does not survive decoding into %T:\nserved:  %s\ndecoded: %s", url, v, body, again)
	}
}

// assertStatusRoundTrip checks every document `gitmesh status` reads, and
// that `gitmesh status -o json` prints what the server served.
func assertStatusRoundTrip(t *testing.T, base string) {
	t.Helper()
	var st apiv1.Status
	assertRoundTrip(t, base+"/api/v1/status", &st)
	var px apiv1.Proxies
	assertRoundTrip(t, base+"/api/v1/proxies", &px)
	if code, _ := httpGet(t, base+"/api/v1/drift"); code == http.StatusOK {
		var dr api.DriftResponse
		assertRoundTrip(t, base+"/api/v1/drift", &dr)
	}
	code, out, errOut := runCLI(t, "status", "--server", base, "-o", "json")
	if code != 0 {
		t.Fatalf("gitmesh status -o json: exit %d: %s", code, errOut)
	}
	var printed struct {
		Status any `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatal(err)
	}
	_, body := httpGet(t, base+"/api/v1/status")
	var served any
	json.Unmarshal([]byte(body), &served)
	if !reflect.DeepEqual(printed.Status, served) {
		t.Fatalf("gitmesh status -o json printed status\n%s\nbut the server serves\n%s", out, body)
	}
}

// TestStatusVersionAfterWeightsOnlyPush: a weights-only push re-sends RDS
// alone, so every other type's ACKed revision is the previous one. The
// VERSION column is the revision the server says the proxy runs, not the
// revision of whichever type column comes last.
func TestStatusVersionAfterWeightsOnlyPush(t *testing.T) {
	const old, live = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	synced := func(url, rev string) apiv1.TypeStatus {
		return apiv1.TypeStatus{TypeURL: url, Status: apiv1.Synced, AckedRevision: rev, SentRevision: rev}
	}
	var types []apiv1.TypeStatus
	for _, url := range snapshot.Types() {
		rev := old
		if url == snapshot.RouteType {
			rev = live
		}
		types = append(types, synced(url, rev))
	}
	px := apiv1.Proxies{Revision: live, Proxies: []apiv1.Proxy{{
		NodeID: "sidecar/default/reviews/v1/r-1", Protocol: "sotw", Status: apiv1.Synced, Revision: live, Types: types,
	}}}
	st := apiv1.Status{Source: "git", Ready: true, Live: &apiv1.Revision{ID: live, Short: live[:12], AppliedAt: now}}
	var b bytes.Buffer
	printStatus(&b, st, px, now)
	var row string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "sidecar/default/reviews/v1/r-1") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) == 0 || f[len(f)-1] != live[:12] {
		t.Fatalf("proxy row %q: want VERSION %s\n%s", row, live[:12], b.String())
	}
}
