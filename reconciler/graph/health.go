package graph

import (
	"sort"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// maxNacks bounds the NACK texts kept per class: the proxies view lists
// every one; the graph needs to show that and why.
const maxNacks = 5

// health is the proxies' sync state per class.
type health struct {
	byClass map[string][]apiv1.Proxy
	nacks   map[string][]string
}

func newHealth(proxies []apiv1.Proxy) *health {
	h := &health{byClass: map[string][]apiv1.Proxy{}, nacks: map[string][]string{}}
	for _, p := range proxies {
		h.byClass[p.Class] = append(h.byClass[p.Class], p)
	}
	for class, ps := range h.byClass {
		type nack struct{ text, sortKey string }
		var ns []nack
		for _, p := range ps {
			for _, t := range p.Types {
				if t.Status == apiv1.Nacked && t.LastNack != nil {
					ns = append(ns, nack{p.NodeID + ": " + snapshot.Abbrev(t.TypeURL) + ": " + t.LastNack.Error,
						t.LastNack.At.UTC().Format("20060102T150405.000000000") + p.NodeID + t.TypeURL})
				}
			}
		}
		// Newest first; the node id and type break ties, so equal input
		// gives equal output.
		sort.Slice(ns, func(i, j int) bool { return ns[i].sortKey > ns[j].sortKey })
		for i := 0; i < len(ns) && i < maxNacks; i++ {
			h.nacks[class] = append(h.nacks[class], ns[i].text)
		}
	}
	return h
}

// class is the health of one proxy class and how many proxies it has:
// NACKED if any proxy rejected its config, STALE if any has not ACKed
// what it was sent, SYNCED when all have, NO PROXY when none is connected.
// A proxy that was sent nothing yet (NOT SENT: nothing it asked for
// exists) holds no config to disagree with: it counts as synced.
func (h *health) class(class string) (apiv1.Health, int) {
	ps := h.byClass[class]
	if len(ps) == 0 {
		return apiv1.HealthNoProxy, 0
	}
	out := apiv1.HealthSynced
	for _, p := range ps {
		switch p.Status {
		case apiv1.Nacked:
			return apiv1.HealthNacked, len(ps)
		case apiv1.Stale:
			out = apiv1.HealthStale
		}
	}
	return out, len(ps)
}

// rank orders health from best to worst for a node of several classes.
var rank = map[apiv1.Health]int{
	apiv1.HealthUnmanaged: 0, apiv1.HealthNoProxy: 1, apiv1.HealthSynced: 2, apiv1.HealthStale: 3, apiv1.HealthNacked: 4,
}

// worst is a service's health from its versions': the worst of the
// versions that have proxies (a version nobody runs yet does not make a
// serving service look down), NO PROXY when none has, UNMANAGED when it
// has no classes at all (proxy: none).
func worst(states []apiv1.Health) apiv1.Health {
	out := apiv1.HealthUnmanaged
	for _, s := range states {
		if rank[s] > rank[out] {
			out = s
		}
	}
	return out
}
