package reconciler

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types. Each reconcile step owns one condition; Ready, Reconciling
// and Stalled summarise them the way Flux and Kubernetes controllers do, so
// dashboards that read Flux objects read gitmesh the same way.
const (
	// ConditionReady is True when the newest revision is the one being served.
	ConditionReady = "Ready"
	// ConditionReconciling is True while a revision is being worked on or a
	// transient failure is being retried.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the newest revision is bad and nothing
	// but a new revision will fix it.
	ConditionStalled = "Stalled"

	ConditionFetched  = "SourceFetched"
	ConditionLoaded   = "Loaded"
	ConditionChecked  = "Checked"
	ConditionRendered = "Rendered"
	ConditionApplied  = "Applied"
	// ConditionPersisted is True when the state dir holds the revision
	// being served, so a restart serves it too (persist.go). Absent
	// without a state dir.
	ConditionPersisted = "Persisted"
)

// Reasons used in conditions.
const (
	ReasonSucceeded    = "Succeeded"
	ReasonProgressing  = "Progressing"
	ReasonFetchFailed  = "FetchFailed"
	ReasonLoadFailed   = "LoadFailed"
	ReasonCheckFailed  = "CheckFailed"
	ReasonRenderFailed = "RenderFailed"
	ReasonApplyFailed  = "ApplyFailed"
	// ReasonPersistFailed: the last good state could not be written to the
	// state dir (read-only, disk full); it is retried with backoff.
	ReasonPersistFailed = "PersistFailed"
	// ReasonClassLossRefused: the revision would remove more than
	// --max-class-loss of the live proxy classes (guard.go).
	ReasonClassLossRefused = "ClassLossRefused"
	ReasonServingLastGood  = "ServingLastGood"
	ReasonRestoredFromDisk = "RestoredFromDisk"
	// ReasonOtherSourceState: the state dir holds another source's last
	// good state, which is not restored (state.ErrOtherOrigin).
	ReasonOtherSourceState = "StateOfOtherSource"
	ReasonNoRevision       = "NoRevision"
	// ReasonRetrying is Reconciling's and Stalled's reason while a step
	// fails transiently (Git unreachable, say) and is being retried: not
	// stalled, but not succeeding either.
	ReasonRetrying = "Retrying"
	// ReasonIdle is Reconciling's reason when nothing is being worked on.
	ReasonIdle = "Idle"
)

// stepConditions lists the step-owned conditions in pipeline order; the
// first one that is False explains why Ready is False.
var stepConditions = []string{ConditionFetched, ConditionLoaded, ConditionChecked, ConditionRendered, ConditionApplied, ConditionPersisted}

// conditions is a list of conditions whose LastTransitionTime changes only
// when a condition's status changes (meta.SetStatusCondition's rule), so
// "since when" answers stay true across repeated reconciles.
type conditions []metav1.Condition

func (c *conditions) set(now time.Time, typ string, status bool, reason, message string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	list := []metav1.Condition(*c)
	meta.SetStatusCondition(&list, metav1.Condition{
		Type:               typ,
		Status:             s,
		Reason:             reason,
		Message:            message,
		LastTransitionTime: metav1.NewTime(now),
	})
	*c = conditions(list)
}

func (c conditions) get(typ string) *metav1.Condition {
	return meta.FindStatusCondition([]metav1.Condition(c), typ)
}

func (c conditions) isTrue(typ string) bool {
	return meta.IsStatusConditionTrue([]metav1.Condition(c), typ)
}

// summarize derives Ready from the step conditions, in one place, after
// every attempt, so Ready is always reported and always agrees with them.
func (c *conditions) summarize(now time.Time, serving bool, stalled bool, reconciling bool) {
	// Every reason says what is going on: Stalled=False during a retried
	// failure is "Retrying", never "Succeeded".
	failing := c.firstFailing()
	retrying := reconciling && !stalled && failing != nil
	switch {
	case stalled:
		c.set(now, ConditionStalled, true, stalledReason(*c, stalled), stalledMessage(*c, stalled))
	case retrying:
		c.set(now, ConditionStalled, false, ReasonRetrying, failing.Reason+" is transient; retrying")
	case failing == nil && reconciling:
		c.set(now, ConditionStalled, false, ReasonProgressing, "")
	default:
		c.set(now, ConditionStalled, false, ReasonSucceeded, "")
	}
	switch {
	case retrying:
		c.set(now, ConditionReconciling, true, ReasonRetrying, failing.Reason+": "+failing.Message)
	case reconciling:
		c.set(now, ConditionReconciling, true, ReasonProgressing, "")
	default:
		c.set(now, ConditionReconciling, false, ReasonIdle, "")
	}
	for _, typ := range stepConditions {
		cond := c.get(typ)
		if cond == nil || cond.Status == metav1.ConditionTrue {
			continue
		}
		msg := cond.Message
		switch {
		case typ == ConditionPersisted:
			msg += " (serving it, but a restart would serve an older revision)"
		case serving:
			msg += " (serving the last good revision)"
		}
		c.set(now, ConditionReady, false, cond.Reason, msg)
		return
	}
	if !serving {
		c.set(now, ConditionReady, false, ReasonNoRevision, "no revision has been served yet")
		return
	}
	c.set(now, ConditionReady, true, ReasonSucceeded, "serving the newest revision")
}

// firstFailing is the first step condition that is not True, or nil.
func (c conditions) firstFailing() *metav1.Condition {
	for _, typ := range stepConditions {
		if cond := c.get(typ); cond != nil && cond.Status != metav1.ConditionTrue {
			return cond
		}
	}
	return nil
}

func stalledReason(c conditions, stalled bool) string {
	if !stalled {
		return ReasonSucceeded
	}
	for _, typ := range stepConditions {
		if cond := c.get(typ); cond != nil && cond.Status != metav1.ConditionTrue {
			return cond.Reason
		}
	}
	return ReasonServingLastGood
}

func stalledMessage(c conditions, stalled bool) string {
	if !stalled {
		return ""
	}
	return "the newest revision is invalid; waiting for a new revision"
}
