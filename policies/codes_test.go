package policies

import (
	"os"
	"regexp"
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TestCodesDocumented keeps CODES.md and the code table in step: every code
// has a row with the same severity, and the doc names no code the table lacks.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("CODES.md")
	if err != nil {
		t.Fatalf("read CODES.md: %v", err)
	}
	row := regexp.MustCompile("(?m)^\\| (GM\\d{4}) \\|(?: `[^`]*` \\|| — \\|)? (error|warning|info) \\|")
	documented := map[string]model.Severity{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		sev, err := model.ParseSeverity(m[2])
		if err != nil {
			t.Fatal(err)
		}
		documented[m[1]] = sev
	}
	for _, c := range Codes() {
		sev, ok := documented[c.Code]
		if !ok {
			t.Errorf("%s is not documented in CODES.md", c.Code)
		} else if sev != c.Severity {
			t.Errorf("%s: CODES.md says %s, the table says %s", c.Code, sev, c.Severity)
		}
	}
	for code := range documented {
		if _, ok := LookupCode(code); !ok {
			t.Errorf("CODES.md documents %s, which the code table lacks", code)
		}
	}
}

func TestCodesOrdered(t *testing.T) {
	cs := Codes()
	for i := 1; i < len(cs); i++ {
		if cs[i-1].Code >= cs[i].Code {
			t.Errorf("code table out of order or duplicated at %s, %s", cs[i-1].Code, cs[i].Code)
		}
	}
	if _, ok := LookupCode("GM9999"); ok {
		t.Error("LookupCode(GM9999) found a code")
	}
}
