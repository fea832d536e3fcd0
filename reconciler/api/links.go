package api

import (
	"path"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// FindingLink expands --repo-url-template for a finding at pos of
// revision rev: {rev}, {file} (relative to the repository root: dir, the
// mesh's path in the repository, joined with the file), {line} and {col}.
// It returns "" without a template or a position.
func FindingLink(tmpl, dir, rev string, pos model.Pos) string {
	if tmpl == "" || !pos.IsValid() {
		return ""
	}
	file := pos.File
	if dir != "" && dir != "." {
		file = path.Join(dir, file)
	}
	return strings.NewReplacer("{rev}", rev, "{file}", file,
		"{line}", strconv.Itoa(max(pos.Line, 1)), "{col}", strconv.Itoa(max(pos.Col, 1))).Replace(tmpl)
}
