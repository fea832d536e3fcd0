package meshgen

import (
	"bytes"
	"testing"
)

func TestGenerateDeterministic(t *testing.T) {
	a := Generate(50, Options{Seed: 7})
	b := Generate(50, Options{Seed: 7})
	if len(a) != len(b) || len(a) != 52 {
		t.Fatalf("got %d and %d files, want 52", len(a), len(b))
	}
	for name, f := range a {
		if !bytes.Equal(f.Data, b[name].Data) {
			t.Fatalf("%s differs between runs", name)
		}
	}
	c := Generate(50, Options{Seed: 8})
	same := 0
	for name, f := range a {
		if bytes.Equal(f.Data, c[name].Data) {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("seed has no effect")
	}
}

func TestCallees(t *testing.T) {
	for _, tc := range []struct {
		i, n, k int
		want    []int
	}{
		{0, 10, 5, []int{1, 2, 3, 4, 5}},
		{8, 10, 5, []int{9, 0, 1, 2, 3}},
		{0, 3, 5, []int{1, 2}},
		{0, 1, 5, nil},
	} {
		got := Callees(tc.i, tc.n, tc.k)
		if len(got) != len(tc.want) {
			t.Errorf("Callees(%d, %d, %d) = %v, want %v", tc.i, tc.n, tc.k, got, tc.want)
			continue
		}
		for j := range got {
			if got[j] != tc.want[j] {
				t.Errorf("Callees(%d, %d, %d) = %v, want %v", tc.i, tc.n, tc.k, got, tc.want)
			}
		}
	}
}
