package reconciler

import (
	"testing"
	"time"
)

// TestConditionsWhileFetchesFail: conditions mean what they say. While a
// fetch keeps failing (transient), Stalled is False but not "Succeeded",
// Reconciling says it is retrying and why, and Ready names the failing
// step; once a fetch succeeds again, everything says Succeeded/Idle.
func TestConditionsWhileFetchesFail(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var c conditions
	got := func(typ string) string {
		cond := c.get(typ)
		if cond == nil {
			return "missing"
		}
		return string(cond.Status) + "/" + cond.Reason
	}
	c.summarize(now, false, false, true) // starting, nothing tried yet
	if got(ConditionStalled) != "False/Progressing" || got(ConditionReconciling) != "True/Progressing" {
		t.Errorf("at start: Stalled %s, Reconciling %s", got(ConditionStalled), got(ConditionReconciling))
	}
	for i := 0; i < 3; i++ { // a restored revision is served; Git is down
		now = now.Add(time.Second)
		c.set(now, ConditionFetched, false, ReasonFetchFailed, "dial tcp 127.0.0.1:1: connection refused")
		c.summarize(now, true, false, true)
		for typ, want := range map[string]string{
			ConditionStalled:     "False/Retrying",
			ConditionReconciling: "True/Retrying",
			ConditionReady:       "False/FetchFailed",
		} {
			if got(typ) != want {
				t.Errorf("failing fetch %d: %s = %s, want %s", i, typ, got(typ), want)
			}
		}
		if m := c.get(ConditionReconciling).Message; m != "FetchFailed: dial tcp 127.0.0.1:1: connection refused" {
			t.Errorf("Reconciling message %q does not say why", m)
		}
	}
	now = now.Add(time.Second)
	for _, typ := range stepConditions {
		c.set(now, typ, true, ReasonSucceeded, "")
	}
	c.summarize(now, true, false, false)
	for typ, want := range map[string]string{
		ConditionStalled:     "False/Succeeded",
		ConditionReconciling: "False/Idle",
		ConditionReady:       "True/Succeeded",
	} {
		if got(typ) != want {
			t.Errorf("after recovery: %s = %s, want %s", typ, got(typ), want)
		}
	}
	// A bad revision (not transient) stalls with the failing step's reason.
	c.set(now, ConditionChecked, false, ReasonCheckFailed, "GM0201")
	c.summarize(now, true, true, false)
	if got(ConditionStalled) != "True/CheckFailed" || got(ConditionReconciling) != "False/Idle" {
		t.Errorf("bad revision: Stalled %s, Reconciling %s", got(ConditionStalled), got(ConditionReconciling))
	}
}
