package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/reconciler/xds"
)

const clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
const listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"

func sample() *LastGood {
	shared := &xds.Resource{Name: "outbound|9080||ratings.default.svc.cluster.local", Version: "v1", Any: &anypb.Any{TypeUrl: clusterType, Value: []byte("cluster-bytes")}}
	l1 := &xds.Resource{Name: "0.0.0.0_9080", Version: "l1", Any: &anypb.Any{TypeUrl: listenerType, Value: []byte("listener-1")}}
	l2 := &xds.Resource{Name: "0.0.0.0_9080", Version: "l2", Any: &anypb.Any{TypeUrl: listenerType, Value: []byte("listener-2")}}
	return &LastGood{
		Revision:  "0123456789abcdef0123456789abcdef01234567",
		Message:   "reviews: shift to v3",
		Author:    "Ada <ada@example.com>",
		Committed: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		AppliedAt: time.Date(2026, 11, 20, 10, 0, 1, 0, time.UTC),
		Update: xds.Update{
			Revision: "0123456789abcdef0123456789abcdef01234567",
			Classes: map[string]*xds.ClassConfig{
				"sidecar/default/reviews/v1": {Resources: map[string][]*xds.Resource{clusterType: {shared}, listenerType: {l1}}},
				"sidecar/default/reviews/v2": {Resources: map[string][]*xds.Resource{clusterType: {shared}, listenerType: {l2}}},
			},
		},
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := sample()
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	// A resource shared by two classes is one object again after loading.
	a := got.Update.Classes["sidecar/default/reviews/v1"].Resources[clusterType][0]
	b := got.Update.Classes["sidecar/default/reviews/v2"].Resources[clusterType][0]
	if a != b {
		t.Error("shared resource was loaded as two copies")
	}
	st, err := os.Stat(filepath.Join(dir, fileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("state file mode %v is readable by others", st.Mode().Perm())
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of empty dir = %v, want ErrNotFound", err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, sample()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fileName)
	raw, _ := os.ReadFile(path)
	raw[len(raw)-3] ^= 0xff
	os.WriteFile(path, raw, 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Load of corrupt file = %v, want checksum mismatch", err)
	}
	os.WriteFile(path, []byte("hello"), 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a gitmesh state file") {
		t.Fatalf("Load of stray file = %v, want not a gitmesh state file", err)
	}
}

func TestSaveReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	first := sample()
	if err := Save(dir, first); err != nil {
		t.Fatal(err)
	}
	second := sample()
	second.Revision = "fedcba"
	second.Update.Revision = "fedcba"
	if err := Save(dir, second); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != "fedcba" {
		t.Errorf("revision = %q, want the second save", got.Revision)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only %s (temp files left behind?)", len(entries), fileName)
	}
}

// TestSaveDropsSecrets: a secret (which holds a private key) never reaches
// the state file; the plan that re-creates it does.
func TestSaveDropsSecrets(t *testing.T) {
	dir := t.TempDir()
	key := []byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n")
	sec := &xds.Resource{Name: "default", Version: "k1", Any: &anypb.Any{TypeUrl: secretType, Value: key}}
	cl := &xds.Resource{Name: "c", Version: "v1", Any: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster"}}
	lg := &LastGood{Revision: "r1", Update: xds.Update{Revision: "r1", Classes: map[string]*xds.ClassConfig{
		"sidecar/default/a/v1": {Resources: map[string][]*xds.Resource{secretType: {sec}, cl.Any.TypeUrl: {cl}}},
	}}, Secrets: map[string]ClassSecrets{"sidecar/default/a/v1": {Identity: "spiffe://cluster.local/ns/default/sa/a"}}}
	if err := Save(dir, lg); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, fileName))
	if bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, key[30:60]) {
		t.Fatal("the state file holds the private key")
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	res := got.Update.Classes["sidecar/default/a/v1"].Resources
	if _, ok := res[secretType]; ok || len(res[cl.Any.TypeUrl]) != 1 {
		t.Errorf("loaded resources %v, want the cluster only", res)
	}
	if got.Secrets["sidecar/default/a/v1"].Identity != "spiffe://cluster.local/ns/default/sa/a" {
		t.Errorf("plan not kept: %+v", got.Secrets)
	}
}
