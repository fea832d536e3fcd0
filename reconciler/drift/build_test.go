package drift

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/schema/model"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

const (
	ldsType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	cdsType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
)

// testMesh: reviews (kubernetes discovery, v1+v2, port http 9080→9080),
// ratings (static, v1 with one endpoint), loadgen (a client with no ports).
func testMesh() *model.Mesh {
	return &model.Mesh{
		Mesh: model.MeshConfig{Name: "bookinfo"},
		Services: map[string]*model.Service{
			"reviews": {Name: "reviews", Namespace: "default", Discovery: "kubernetes",
				Ports: []model.Port{{Name: "http", Number: 9080, TargetPort: 9080}},
				Versions: map[string]*model.Version{
					"v1": {Name: "v1", Labels: map[string]string{"version": "v1"}},
					"v2": {Name: "v2", Labels: map[string]string{"version": "v2"}},
				}},
			"ratings": {Name: "ratings", Namespace: "default", Discovery: "static",
				Ports: []model.Port{{Name: "http", Number: 9080, TargetPort: 9080}},
				Versions: map[string]*model.Version{
					"v1": {Name: "v1", Endpoints: []model.Endpoint{{Address: "10.0.0.1"}}},
				}},
			"loadgen": {Name: "loadgen", Namespace: "default", Discovery: "static",
				Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
		},
	}
}

// codes returns "CODE severity objects" per finding, sorted as in a report.
func summarize(fs []Finding) []string {
	Sort(fs)
	var out []string
	for _, f := range fs {
		out = append(out, f.Code+" "+string(f.Severity)+" "+strings.Join(f.Objects, " "))
	}
	return out
}

func TestBuild(t *testing.T) {
	healthy := map[string][]model.Endpoint{
		"reviews/v1": {{Address: "10.1.0.1"}}, "reviews/v2": {{Address: "10.1.0.2"}},
	}
	kubeOK := &Kubernetes{Reachable: true, Services: []KubeService{
		{Namespace: "default", Name: "reviews", Ports: []KubePort{{Name: "http", Port: 9080, TargetPort: "9080"}}, ReadyEndpoints: 2},
		{Namespace: "default", Name: "kubernetes", Ports: []KubePort{{Name: "https", Port: 443}}},
	}}
	tests := []struct {
		name string
		in   Input
		want []string
		msg  string // a substring of the first finding's message
	}{
		{name: "in sync", in: Input{Mesh: testMesh(), Endpoints: healthy, Kubernetes: kubeOK}},
		{name: "uninjected pod", in: Input{Mesh: testMesh(), Endpoints: healthy, Uninjected: []UninjectedPod{
			{Namespace: "default", Pod: "mystery-*", Reason: `label app="mystery" names no service of the mesh`, At: t0}}},
			want: []string{"GM2012 warning pod/default/mystery-*"},
			msg:  `pod default/mystery-* runs without a sidecar: label app="mystery" names no service of the mesh`},
		{name: "nack", in: Input{Mesh: testMesh(), Endpoints: healthy, Proxies: []apiv1.Proxy{{
			NodeID: "sidecar/default/reviews/v2/pod-1", Types: []apiv1.TypeStatus{
				{TypeURL: ldsType, Status: apiv1.Nacked, LastNack: &apiv1.Nack{Revision: "1a2b3c4d5e6f7a8b", Error: "duplicate listener"}},
				{TypeURL: cdsType, Status: apiv1.Synced},
			}}}},
			want: []string{"GM2001 error proxy/sidecar/default/reviews/v2/pod-1 type/listeners"},
			msg:  "sidecar/default/reviews/v2/pod-1 NACKed listeners of revision 1a2b3c4d5e6f: duplicate listener"},
		{name: "stale after grace only", in: Input{Mesh: testMesh(), Endpoints: healthy, Proxies: []apiv1.Proxy{
			{NodeID: "sidecar/default/reviews/v1/a", Types: []apiv1.TypeStatus{{TypeURL: cdsType, Status: apiv1.Stale, SentAt: t0.Add(-time.Minute), SentRevision: "abc"}}},
			{NodeID: "sidecar/default/reviews/v1/b", Types: []apiv1.TypeStatus{{TypeURL: cdsType, Status: apiv1.Stale, SentAt: t0.Add(-time.Second)}}},
		}},
			want: []string{"GM2002 warning proxy/sidecar/default/reviews/v1/a type/clusters"},
			msg:  "has not ACKed clusters of revision abc within 30s"},
		{name: "undeclared and refused proxies", in: Input{Mesh: testMesh(), Endpoints: healthy, Rejections: []apiv1.Rejection{
			{NodeID: "sidecar/default/ghost/v1/x", Code: "NotFound", Error: "class not served", At: t0.Add(-time.Minute)},
			{NodeID: "sidecar/default/ghost/v1/x", Code: "NotFound", Error: "class not served", At: t0.Add(-time.Second)},
			{NodeID: "old/one", Code: "NotFound", At: t0.Add(-time.Hour)},
			{NodeID: "sidecar/default/ratings/v1/y", Code: "PermissionDenied", Error: "wrong identity", At: t0},
			{NodeID: "sidecar/default/ratings/v1/z", Code: "Unavailable", At: t0},
		}},
			want: []string{
				"GM2004 error proxy/sidecar/default/ratings/v1/y",
				"GM2003 warning proxy/sidecar/default/ghost/v1/x",
			}},
		{name: "missing endpoints", in: Input{Mesh: testMesh(), Endpoints: map[string][]model.Endpoint{"reviews/v1": {{Address: "10.1.0.1"}}, "reviews/v2": {}}},
			want: []string{"GM2005 warning service/default/reviews version/v2"}},
		{name: "no endpoints at all", in: Input{Mesh: testMesh()},
			want: []string{"GM2005 error service/default/reviews"},
			msg:  "service reviews has no ready endpoints (kubernetes discovery)"},
		{name: "kubernetes drift", in: Input{Mesh: testMesh(), Endpoints: healthy, Kubernetes: &Kubernetes{Reachable: true, Services: []KubeService{
			{Namespace: "default", Name: "reviews", Ports: []KubePort{{Name: "http", Port: 9081, TargetPort: "9080"}, {Name: "admin", Port: 15000}}},
			{Namespace: "default", Name: "legacy", ReadyEndpoints: 3},
		}}},
			want: []string{
				"GM2006 warning kubernetes/service/default/legacy",
				"GM2007 warning service/default/reviews port/http",
				"GM2007 info service/default/reviews port/admin",
			}},
		{name: "kubernetes service missing", in: Input{Mesh: testMesh(), Endpoints: healthy, Kubernetes: &Kubernetes{Reachable: true}},
			want: []string{"GM2008 warning service/default/reviews"}},
		{name: "kubernetes unreachable", in: Input{Mesh: testMesh(), Endpoints: healthy, Kubernetes: &Kubernetes{
			Error: "connection refused", UnreachableSince: t0.Add(-time.Minute), Services: kubeOK.Services}},
			want: []string{"GM2011 error kubernetes/api"},
			msg:  "Kubernetes API unreachable since 2026-11-21T09:59:00Z, serving the last known endpoints: connection refused"},
		{name: "certificates", in: Input{Mesh: testMesh(), Endpoints: healthy, Certificates: []Certificate{
			{Kind: "root", Name: "cluster.local", NotAfter: t0.Add(3 * 24 * time.Hour)},
			{Kind: "gateway", Name: "bookinfo-cert", NotAfter: t0.Add(-time.Hour)},
			{Kind: "workload", Name: "spiffe://cluster.local/ns/default/sa/reviews", NotAfter: t0.Add(time.Hour), RenewError: "ca key unreadable"},
			{Kind: "root", Name: "fine", NotAfter: t0.Add(365 * 24 * time.Hour)},
		}},
			want: []string{
				"GM2009 error certificate/gateway/bookinfo-cert",
				"GM2009 error certificate/workload/spiffe://cluster.local/ns/default/sa/reviews",
				"GM2009 warning certificate/root/cluster.local",
			}},
		{name: "newest revision not served", in: Input{Mesh: testMesh(), Endpoints: healthy,
			Revision: Revision{Served: "aaaaaaaaaaaaaaaa", Newest: "bbbbbbbbbbbbbbbb", NewestStatus: "failed at check: weights sum to 90"}},
			want: []string{"GM2010 warning revision/bbbbbbbbbbbb"},
			msg:  "newest revision bbbbbbbbbbbb is not served (serving aaaaaaaaaaaa): failed at check: weights sum to 90"},
		{name: "restored without a mesh", in: Input{Kubernetes: kubeOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = t0
			fs := Build(tt.in)
			if diff := cmp.Diff(tt.want, summarize(fs)); diff != "" {
				t.Fatalf("findings (-want +got):\n%s\n%v", diff, fs)
			}
			if tt.msg != "" && !strings.Contains(fs[0].Message, tt.msg) {
				t.Errorf("message %q does not contain %q", fs[0].Message, tt.msg)
			}
		})
	}
}

func TestBuildCapsAFleet(t *testing.T) {
	var ps []apiv1.Proxy
	for i := range 250 {
		ps = append(ps, apiv1.Proxy{NodeID: "sidecar/default/reviews/v2/pod-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26),
			Types: []apiv1.TypeStatus{{TypeURL: ldsType, Status: apiv1.Nacked, LastNack: &apiv1.Nack{Error: "bad"}}}})
	}
	fs := Build(Input{Now: t0, Proxies: ps})
	if len(fs) != maxPerCode+1 {
		t.Fatalf("got %d findings, want %d", len(fs), maxPerCode+1)
	}
	last := fs[len(fs)-1]
	if last.Code != CodeTruncated || last.Message != "150 more GM2001 findings not listed" {
		t.Errorf("last finding = %+v", last)
	}
}

// TestBuildBoundsPeerInput: Build is plain data in, so it bounds what a
// peer chose even when its caller did not: 3 MB node ids, errors and type
// URLs become findings of a few hundred bytes each; TLS refusals are
// reported by peer host, one finding across ephemeral ports.
func TestBuildBoundsPeerInput(t *testing.T) {
	huge := "sidecar/default/reviews/v1/" + strings.Repeat("a", 3<<20)
	in := Input{Now: t0,
		Proxies: []apiv1.Proxy{{NodeID: huge, Types: []apiv1.TypeStatus{
			{TypeURL: "x." + strings.Repeat("T", 3<<20), Status: apiv1.Nacked, LastNack: &apiv1.Nack{Error: strings.Repeat("e", 3<<20)}}}}},
		Rejections: []apiv1.Rejection{
			{NodeID: huge + "b", Code: "NotFound", Error: strings.Repeat("e", 3<<20), At: t0},
			{NodeID: huge + "c", Code: "InvalidArgument", Reason: "limit", Error: strings.Repeat("e", 3<<20), At: t0},
			{Peer: "10.0.0.5:40001", Code: "Unauthenticated", Reason: "tls-no-certificate", Error: "TLS handshake: tls: client didn't provide a certificate", At: t0},
			{Peer: "10.0.0.5:40002", Code: "Unauthenticated", Reason: "tls-no-certificate", Error: "TLS handshake: tls: client didn't provide a certificate", At: t0},
			{Peer: "10.0.0.9:40003", Code: "Unauthenticated", Reason: apiv1.ReasonTLSClosed, Error: "TLS handshake: EOF", At: t0},
		}}
	fs := Build(in)
	size := 0
	for _, f := range fs {
		size += len(f.Message)
		for _, o := range f.Objects {
			size += len(o)
		}
	}
	if size > 8<<10 {
		t.Errorf("findings hold %d bytes of text, want a few KiB", size)
	}
	var tls []Finding
	for _, f := range fs {
		if f.Objects[0] == "peer/10.0.0.5" {
			tls = append(tls, f)
		}
	}
	if len(tls) != 1 || tls[0].Code != CodeProxyRefused || tls[0].Severity != SeverityWarning ||
		tls[0].Message != "peer 10.0.0.5 was refused at the TLS handshake (tls-no-certificate): TLS handshake: tls: client didn't provide a certificate" {
		t.Errorf("TLS refusals = %+v, want one GM2004 warning for peer/10.0.0.5", tls)
	}
	if got := summarize(fs); len(got) != 4 {
		t.Errorf("findings = %v, want NACK, undeclared, over-limit and TLS (not the TCP probe)", got)
	}
}
