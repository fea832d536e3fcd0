package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// UnmarshalJSON accepts a number of nanoseconds (what encoding/json writes
// for a Duration) or a Go duration string such as "1.5s", the form mesh
// files use, so the loader can decode exported CUE straight into the model.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s: %w", b, err)
	}
	*d = Duration(n)
	return nil
}
