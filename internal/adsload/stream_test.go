package adsload

import (
	"slices"
	"testing"
)

func TestDiffNames(t *testing.T) {
	for _, tc := range []struct {
		prev, next, add, drop []string
	}{
		{nil, []string{"a", "b"}, []string{"a", "b"}, nil},
		{[]string{"a", "b"}, nil, nil, []string{"a", "b"}},
		{[]string{"a", "c", "e"}, []string{"b", "c", "d"}, []string{"b", "d"}, []string{"a", "e"}},
		{[]string{"a"}, []string{"a"}, nil, nil},
	} {
		add, drop := diffNames(tc.prev, tc.next)
		if !slices.Equal(add, tc.add) || !slices.Equal(drop, tc.drop) {
			t.Errorf("diffNames(%q, %q) = %q, %q; want %q, %q", tc.prev, tc.next, add, drop, tc.add, tc.drop)
		}
	}
}

// TestHeldDigest checks that a delta stream's holdings keep the digest the
// control plane computes, whatever order updates arrive in.
func TestHeldDigest(t *testing.T) {
	e := func(name, version string) *entry {
		return &entry{name: name, version: version, hash: EntryHash(Types[0], name, version)}
	}
	var ts typeState
	ts.put(e("b", "1"))
	ts.put(e("a", "1"))
	ts.put(e("c", "1"))
	ts.put(e("b", "2"))
	ts.drop("c")
	ts.drop("missing")
	want := EntryHash(Types[0], "a", "1") + EntryHash(Types[0], "b", "2")
	if ts.sum != want || len(ts.held) != 2 || ts.held[0].name != "a" || ts.held[1].version != "2" {
		t.Errorf("held %v, sum %x; want a@1 b@2, sum %x", ts.held, ts.sum, want)
	}
}
