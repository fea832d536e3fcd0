package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// DefaultMaxClassLoss is the share of the live proxy classes, in percent,
// a revision may remove before serve refuses it (--max-class-loss).
const DefaultMaxClassLoss = 50

// guard refuses a revision that removes more than MaxClassLoss percent of
// the live proxy classes, unless the repository sets mesh.allowClassLoss.
// Every proxy of a removed class gets NotFound for its configuration: a
// commit that drops half the mesh is far more often a bad merge or a moved
// directory than a plan, and once applied the damage is done. The policies
// cannot see this (they do not know what is live), so it is a step of the
// loop, between render and apply; the live revision keeps serving and
// Applied, Ready and Stalled say ClassLossRefused.
//
// A mesh emptied on purpose (mesh.allowEmpty with no services) passes too:
// the repository already said so in a field a reviewer sees.
func (r *Reconciler) guard(_ context.Context, a *attempt) *stepError {
	if a.refresh {
		// New endpoints for the live revision: the classes are its own.
		return nil
	}
	r.mu.RLock()
	lg := r.lastGood
	r.mu.RUnlock()
	if lg == nil || len(lg.Update.Classes) == 0 {
		return nil
	}
	m := a.res.Mesh
	if m != nil && (m.Mesh.AllowClassLoss || (len(m.Services) == 0 && m.Mesh.AllowEmpty)) {
		return nil
	}
	next := make(map[string]bool, len(a.res.Bundle.Classes()))
	for _, c := range a.res.Bundle.Classes() {
		next[c] = true
	}
	var lost []string
	for c := range lg.Update.Classes {
		if !next[c] {
			lost = append(lost, c)
		}
	}
	share := 100 * float64(len(lost)) / float64(len(lg.Update.Classes))
	if len(lost) == 0 || share <= r.opts.MaxClassLoss {
		return nil
	}
	slices.Sort(lost)
	names := strings.Join(quoteAll(lost[:min(len(lost), 3)]), ", ")
	if len(lost) > 3 {
		names += fmt.Sprintf(" and %d more", len(lost)-3)
	}
	r.metrics.classLossRefused.Inc()
	return &stepError{
		reason: ReasonClassLossRefused, condition: ConditionApplied,
		err: fmt.Errorf("revision %s removes %d of %d live proxy classes (%.0f%%, more than --max-class-loss %g%%): %s; set mesh.allowClassLoss: true in the repository if that is intended",
			a.rev.Short, len(lost), len(lg.Update.Classes), share, r.opts.MaxClassLoss, names),
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
