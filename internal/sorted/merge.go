// Package sorted holds list helpers shared by render and the xDS server,
// which both keep resources as slices sorted by name.
package sorted

// Merge returns a and b, each sorted by key, as one list sorted by key
// (a's element first on equal keys). When either is empty it returns the
// other without copying.
func Merge[T any](a, b []T, key func(T) string) []T {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || (i < len(a) && key(a[i]) < key(b[j])) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out
}
