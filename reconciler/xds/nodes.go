package xds

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gitmesh/gitmesh/internal/nodeid"
)

// DefaultClassOf maps a node id "CLASS/INSTANCE" to CLASS
// ("sidecar/default/reviews/v2/reviews-v2-7f9c" → "sidecar/default/reviews/v2")
// by the grammar of internal/nodeid, so every instance of a class shares one
// configuration and a malformed id is refused (InvalidArgument) before any
// lookup.
func DefaultClassOf(nodeID string) (string, error) {
	c, _, err := nodeid.Parse(nodeID)
	if err != nil {
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	return c.Name, nil
}

// admit decides whether a stream of nodeID may be served and returns its
// class. Its error is a gRPC status: InvalidArgument for a malformed id,
// Unavailable before the first Apply (the proxy retries), NotFound for a
// class the current revision does not serve, with a summary of what is
// served and the closest class names, so the operator sees the typo.
func (s *Server) admit(nodeID string) (string, error) {
	class, err := s.classOf(nodeID)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return "", err
		}
		return "", status.Errorf(codes.InvalidArgument, "node id %q: %v", nodeID, err)
	}
	s.mu.RLock()
	cs := s.classes[class]
	revision, known := s.revision, s.known
	names := s.classNames
	s.mu.RUnlock()
	if revision == "" {
		return "", status.Errorf(codes.Unavailable, "no configuration loaded yet (node %q)", nodeID)
	}
	if cs != nil {
		cs.mu.Lock()
		removed := cs.removed
		cs.mu.Unlock()
		if !removed {
			return class, nil
		}
	}
	msg := fmt.Sprintf("unknown proxy class %q of node %q at revision %q; %s", class, nodeID, revision, known)
	if near := nearest(class, names, 3); len(near) > 0 {
		msg += fmt.Sprintf("; closest: %s", quoteAll(near))
	}
	return "", status.Error(codes.NotFound, msg)
}

// nearest returns up to n served names sharing the longest prefix with class.
func nearest(class string, names []string, n int) []string {
	type cand struct {
		name   string
		common int
	}
	var cands []cand
	for _, name := range names {
		c := 0
		for c < len(name) && c < len(class) && name[c] == class[c] {
			c++
		}
		if c > 0 {
			cands = append(cands, cand{name, c})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].common > cands[j].common })
	var out []string
	for i := 0; i < len(cands) && i < n; i++ {
		out = append(out, cands[i].name)
	}
	return out
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
