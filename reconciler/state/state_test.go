package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
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

// TestLoadFormat1SecretsPlan: the secrets plan's type moved from this
// package to internal/snapshot (render emits it). gob encodes structs by
// field names, so a file written by the earlier gitmesh, with its own
// ClassSecrets type, still loads with the same format number.
func TestLoadFormat1SecretsPlan(t *testing.T) {
	type oldClassSecrets struct {
		Identity    string
		Credentials []string
	}
	type oldFile struct {
		Format    int
		Revision  string
		Message   string
		Author    string
		Committed time.Time
		AppliedAt time.Time
		Resources []storedResource
		Classes   []storedClass
		Secrets   map[string]oldClassSecrets
	}
	old := oldFile{
		Format: 1, Revision: "0123456789abcdef0123456789abcdef01234567",
		Resources: []storedResource{{TypeURL: clusterType, Name: "c", Version: "v1", Value: []byte("cluster-bytes")}},
		Classes:   []storedClass{{Name: "ingress/edge", Types: []string{clusterType}, Refs: [][]int32{{0}}}},
		Secrets: map[string]oldClassSecrets{"ingress/edge": {Identity: "spiffe://cluster.local/ns/default/sa/edge",
			Credentials: []string{"api-cert", "api-cert-cacert"}}},
	}
	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(old); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body.Bytes())
	dir := t.TempDir()
	raw := append(append(append([]byte(nil), magic...), sum[:]...), body.Bytes()...)
	if err := os.WriteFile(filepath.Join(dir, fileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ClassSecrets{"ingress/edge": {Identity: "spiffe://cluster.local/ns/default/sa/edge",
		Credentials: []string{"api-cert", "api-cert-cacert"}}}
	if diff := cmp.Diff(want, got.Secrets); diff != "" {
		t.Errorf("secrets plan (-want +got):\n%s", diff)
	}
	if got.Update.Classes["ingress/edge"].List(clusterType)[0].Version != "v1" {
		t.Error("resources of a format 1 file not loaded")
	}
}
