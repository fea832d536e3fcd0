package envoystrict

import (
	"os"
	"regexp"
	"testing"
)

// TestCodesDocumented keeps Codes() and the GM08xx table of
// policies/CODES.md in step: the same codes, in order, with the same
// meaning.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../policies/CODES.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| (GM08\\d\\d) \\| (.*?) \\| .*? \\|$").FindAllStringSubmatch(string(doc), -1)
	codes := Codes()
	if len(rows) != len(codes) {
		t.Errorf("CODES.md lists %d GM08xx codes, Codes() %d", len(rows), len(codes))
	}
	for i := 0; i < len(rows) && i < len(codes); i++ {
		if rows[i][1] != codes[i].Code || rows[i][2] != codes[i].Title {
			t.Errorf("row %d: CODES.md has %s %q, Codes() %s %q", i, rows[i][1], rows[i][2], codes[i].Code, codes[i].Title)
		}
	}
	for i := 1; i < len(codes); i++ {
		if codes[i-1].Code >= codes[i].Code {
			t.Errorf("Codes() out of order at %s", codes[i].Code)
		}
	}
}
