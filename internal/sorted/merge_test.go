package sorted

import (
	"slices"
	"testing"
)

func TestMerge(t *testing.T) {
	id := func(s string) string { return s }
	for _, tt := range []struct{ a, b, want []string }{
		{nil, nil, nil},
		{[]string{"a"}, nil, []string{"a"}},
		{nil, []string{"b"}, []string{"b"}},
		{[]string{"a", "c", "e"}, []string{"b", "d"}, []string{"a", "b", "c", "d", "e"}},
		{[]string{"x"}, []string{"a", "y"}, []string{"a", "x", "y"}},
	} {
		if got := Merge(tt.a, tt.b, id); !slices.Equal(got, tt.want) {
			t.Errorf("Merge(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
