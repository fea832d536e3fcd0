package istioimport

import (
	"time"

	"github.com/gitmesh/gitmesh/schema/model"
)

// parseDuration reads a Go duration string, the form gitmesh files use.
func parseDuration(s string) (model.Duration, error) {
	d, err := time.ParseDuration(s)
	return model.Duration(d), err
}

// formatDuration writes a duration the way gitmesh files do ("1.5s").
func formatDuration(d model.Duration) string { return time.Duration(d).String() }
