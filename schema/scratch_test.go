package schema

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestScratch(t *testing.T) {
	for _, d := range strings.Split(os.Getenv("SCRATCH"), ",") {
		for _, plain := range []bool{true, false} {
			defer setPlainPath(plain)()
			_, diags, err := LoadDir(context.Background(), d, Options{})
			t.Logf("%s plain=%v err=%v", d, plain, err)
			for _, l := range diagLines(diags) {
				t.Logf("  %s", l)
			}
		}
	}
}
