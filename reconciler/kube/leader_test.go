package kube

import (
	"context"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/kubetest"
)

// TestLeaderElection runs two replicas against one Lease of the real API
// server: exactly one leads, and when it stops the other takes over.
func TestLeaderElection(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)

	type replica struct {
		l      *Leader
		cancel context.CancelFunc
		done   chan struct{}
	}
	run := func(id string) *replica {
		l, err := NewLeader(c.Client, LeaderOptions{
			Namespace: ns, Name: "gitmesh-writer", Identity: id,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond,
			Logger: testLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{l: l, cancel: cancel, done: make(chan struct{})}
		go func() { l.Run(ctx); close(r.done) }()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	a, b := run("replica-a"), run("replica-b")

	took := eventually(t, 10*time.Second, "a leader elected", func() bool { return a.l.IsLeader() || b.l.IsLeader() })
	t.Logf("first leader after %s", took.Round(time.Millisecond))
	// Sample for a while: never two leaders at once, and both agree who.
	for range 20 {
		if a.l.IsLeader() && b.l.IsLeader() {
			t.Fatal("both replicas lead")
		}
		time.Sleep(50 * time.Millisecond)
	}
	leader, follower := a, b
	if b.l.IsLeader() {
		leader, follower = b, a
	}
	id := leader.l.Identity()
	eventually(t, 5*time.Second, "both see the holder", func() bool {
		return leader.l.Holder() == id && follower.l.Holder() == id
	})

	start := time.Now()
	leader.cancel()
	<-leader.done
	if leader.l.IsLeader() {
		t.Error("stopped replica still reports leading")
	}
	eventually(t, 5*time.Second, "follower takes over", follower.l.IsLeader)
	t.Logf("leader stopped → follower leads in %s", time.Since(start).Round(time.Millisecond))
	eventually(t, 5*time.Second, "holder updated", func() bool { return follower.l.Holder() == follower.l.Identity() })
}

func TestNewLeaderChecksOptions(t *testing.T) {
	for _, o := range []LeaderOptions{
		{Name: "x"},
		{Namespace: "x"},
		{Namespace: "x", Name: "y", LeaseDuration: time.Second, RenewDeadline: time.Second},
	} {
		if _, err := NewLeader(nil, o); err == nil {
			t.Errorf("NewLeader(%+v) = nil error", o)
		}
	}
	l, err := NewLeader(nil, LeaderOptions{Namespace: "x", Name: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Identity() == "" {
		t.Error("NewLeader left the identity empty")
	}
}
