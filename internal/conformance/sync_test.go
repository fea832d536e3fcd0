package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// waitSynced waits until every stream of nodeID has ACKed the last response
// of every type it was sent, and at least the types in want. A NACK fails at
// once with grpc-go's own error text: that is the conformance failure this
// whole test exists to catch.
func waitSynced(t testing.TB, srv *xds.Server, nodeID string, want ...string) []apiv1.Proxy {
	t.Helper()
	var last []apiv1.Proxy
	for start := time.Now(); time.Since(start) < waitLimit; time.Sleep(5 * time.Millisecond) {
		last = streamsOf(srv, nodeID)
		for _, p := range last {
			for _, ts := range p.Types {
				if ts.LastNack != nil {
					t.Fatalf("%s NACKed %s (stream %d, %s): %s", nodeID, ts.TypeURL, p.Stream, p.Protocol, ts.LastNack.Error)
				}
			}
		}
		if len(last) > 0 && allSynced(last, want) {
			return last
		}
	}
	t.Fatalf("%s not synced after %v:\n%s\nrejections: %+v", nodeID, waitLimit, describe(last), srv.Rejections())
	return nil
}

// waitAcked waits until some stream of nodeID has ACKed typeURL at revision.
func waitAcked(t testing.TB, srv *xds.Server, nodeID, typeURL, revision string) {
	t.Helper()
	var last []apiv1.Proxy
	for start := time.Now(); time.Since(start) < waitLimit; time.Sleep(time.Millisecond) {
		last = streamsOf(srv, nodeID)
		for _, p := range last {
			for _, ts := range p.Types {
				if ts.LastNack != nil {
					t.Fatalf("%s NACKed %s: %s", nodeID, ts.TypeURL, ts.LastNack.Error)
				}
				if ts.TypeURL == typeURL && ts.AckedRevision == revision {
					return
				}
			}
		}
	}
	t.Fatalf("%s did not ACK %s of %s within %v:\n%s", nodeID, shortType(typeURL), revision, waitLimit, describe(last))
}

func streamsOf(srv *xds.Server, nodeID string) []apiv1.Proxy {
	var out []apiv1.Proxy
	for _, p := range srv.Proxies() {
		if p.NodeID == nodeID {
			out = append(out, p)
		}
	}
	return out
}

func allSynced(streams []apiv1.Proxy, want []string) bool {
	for _, p := range streams {
		var have []string
		for _, ts := range p.Types {
			if ts.Status != apiv1.Synced {
				return false
			}
			have = append(have, ts.TypeURL)
		}
		for _, w := range want {
			if !slices.Contains(have, w) {
				return false
			}
		}
	}
	return true
}

// describe prints stream states for failure messages and the test log.
func describe(streams []apiv1.Proxy) string {
	var b strings.Builder
	for _, p := range streams {
		fmt.Fprintf(&b, "  stream %d (%s) %s:", p.Stream, p.Protocol, p.Status)
		for _, ts := range p.Types {
			fmt.Fprintf(&b, " %s=%s/%d", shortType(ts.TypeURL), ts.Status, ts.SentResources)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

func names[T interface{ GetName() string }](items []T) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.GetName()
	}
	return out
}

func shortType(typeURL string) string { return typeURL[strings.LastIndexByte(typeURL, '.')+1:] }
