package conformance

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/render/traffic"
	"github.com/gitmesh/gitmesh/schema/model"
)

// grpcCode is the status a grpc-go client sees for an outcome status of
// the evaluator: an RBAC deny is PERMISSION_DENIED (grpc-go's RBAC
// interceptor), an HTTP 503 fault abort UNAVAILABLE (gRFC A33's mapping of
// HTTP statuses), a gRPC abort its own code.
func grpcCode(s int) (codes.Code, error) {
	switch {
	case s == 403:
		return codes.PermissionDenied, nil
	case s == 503:
		return codes.Unavailable, nil
	case s >= 0 && s <= 16:
		return codes.Code(s), nil
	}
	return 0, fmt.Errorf("status %d has no gRPC equivalent in this test", s)
}

// observed is what n real RPCs did: replies by answering version, errors
// by code, in percent.
type observed struct {
	versions map[string]float64
	codes    map[codes.Code]float64
}

func call(t *testing.T, conn *grpc.ClientConn, req traffic.Request, n int) observed {
	t.Helper()
	o := observed{versions: map[string]float64{}, codes: map[codes.Code]float64{}}
	md := metadata.MD{}
	for k, v := range req.Headers {
		md.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), waitLimit)
	defer cancel()
	for range n {
		out := new(wrapperspb.StringValue)
		err := conn.Invoke(ctx, req.Path, wrapperspb.String("conformance"), out, grpc.WaitForReady(true))
		if err != nil {
			o.codes[status.Code(err)] += 100 / float64(n)
			continue
		}
		o.versions[strings.TrimSpace(out.GetValue())] += 100 / float64(n)
	}
	return o
}

// crossCheck sends every declared traffic test of a proxyless class with
// a real grpc-go client through the served config and requires what the
// evaluator said: the same statuses with the same shares, and when every
// request goes through, the same split over versions. A disagreement
// fails the build: either render/traffic models grpc-go wrongly or render
// emits what grpc-go reads differently.
func crossCheck(t *testing.T, res *pipeline.Result, r resolver.Builder) {
	w := traffic.NewWorld(res.Mesh, nil, nil)
	cfgs := traffic.BundleConfigs(res.Bundle)
	names := res.Mesh.TestNames()
	if len(names) < 5 {
		t.Fatalf("only %d traffic tests declared in the conformance mesh", len(names))
	}
	for _, name := range names {
		tt := res.Mesh.Tests[name]
		if !strings.HasPrefix(tt.From, "proxyless/") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			mr, err := model.ParseRequest(tt.Request)
			if err != nil {
				t.Fatal(err)
			}
			req := traffic.Request{Request: mr, Headers: tt.Headers}
			want, err := traffic.Evaluate(cfgs, w, tt.From, req)
			if err != nil {
				t.Fatal(err)
			}
			// Shares are compared within 8 points: at 400 calls an 80/20
			// split's standard deviation is 2 points.
			n, tol := 50, 0.0
			if len(want.To) > 1 {
				n, tol = 400, 8
			}
			conn := dialConn(t, r, fmt.Sprintf("%s:%d", mr.Host, mr.Port))
			got := call(t, conn, req, n)
			wantCodes := map[codes.Code]float64{}
			failed := 0.0
			for s, share := range want.Status {
				c, err := grpcCode(s)
				if err != nil {
					t.Fatal(err)
				}
				wantCodes[c] += share
				failed += share
			}
			for _, c := range union(wantCodes, got.codes) {
				if math.Abs(wantCodes[c]-got.codes[c]) > tol+1e-6 {
					t.Errorf("%s: evaluator says %v for %.4g%%, grpc-go got %.4g%%\nevaluator:\n%s", tt.Request, c, wantCodes[c], got.codes[c], traffic.Text(want))
				}
			}
			if failed > 0 {
				return
			}
			for dest, share := range want.To {
				_, v, _ := strings.Cut(dest, "/")
				if math.Abs(got.versions[v]-share) > tol+1e-6 {
					t.Errorf("%s: evaluator routes %.4g%% to %s, grpc-go reached %s %.4g%% (all: %v)", tt.Request, share, dest, v, got.versions[v], got.versions)
				}
			}
			t.Logf("%s: evaluator %s; grpc-go versions %v codes %v", name, traffic.Summary(want), got.versions, got.codes)
		})
	}
}

func union(a, b map[codes.Code]float64) []codes.Code {
	seen := map[codes.Code]bool{}
	var out []codes.Code
	for _, m := range []map[codes.Code]float64{a, b} {
		for c := range m {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
