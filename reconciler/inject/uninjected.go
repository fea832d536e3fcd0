package inject

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/gitmesh/gitmesh/reconciler/drift"
)

// DefaultUninjectedWindow is how long an admission without a sidecar
// stays in the drift report after the last one for the same pod name.
const DefaultUninjectedWindow = time.Hour

// maxUninjected bounds the memory a flood of unmatched pods can take;
// the oldest entry goes first.
const maxUninjected = 1000

// Uninjected remembers the pods admitted without a sidecar because they
// name no declared service or version, for the drift report (GM2012).
// It holds this process's admissions only: with two replicas, each
// reports the pods the API server happened to send it. Safe for
// concurrent use.
type Uninjected struct {
	window time.Duration
	mu     sync.Mutex
	pods   map[string]drift.UninjectedPod
}

// NewUninjected returns a record that forgets entries after window (0
// means DefaultUninjectedWindow).
func NewUninjected(window time.Duration) *Uninjected {
	if window <= 0 {
		window = DefaultUninjectedWindow
	}
	return &Uninjected{window: window, pods: map[string]drift.UninjectedPod{}}
}

// Record notes one admission; pod is the name, or generateName + "*".
func (u *Uninjected) Record(ns, pod, reason string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pruneLocked(at)
	key := ns + "/" + pod
	if _, ok := u.pods[key]; !ok && len(u.pods) >= maxUninjected {
		var oldest string
		for k, p := range u.pods {
			if oldest == "" || p.At.Before(u.pods[oldest].At) {
				oldest = k
			}
		}
		delete(u.pods, oldest)
	}
	u.pods[key] = drift.UninjectedPod{Namespace: ns, Pod: pod, Reason: reason, At: at}
}

// List returns the entries recorded within the window before now, sorted
// by namespace and pod.
func (u *Uninjected) List(now time.Time) []drift.UninjectedPod {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pruneLocked(now)
	out := make([]drift.UninjectedPod, 0, len(u.pods))
	for _, p := range u.pods {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b drift.UninjectedPod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod))
	})
	return out
}

func (u *Uninjected) pruneLocked(now time.Time) {
	for k, p := range u.pods {
		if now.Sub(p.At) > u.window {
			delete(u.pods, k)
		}
	}
}
