// Package console is gitmesh's read-only mesh console at /ui/ on the
// status port: hand-written HTML, CSS and JavaScript embedded in the
// binary (no npm, no CDN, no external font), so it works with no network
// beyond gitmesh itself. It reads only the status API (/api/v1/...): the
// graph, revisions, proxies and drift; it adds no second source of truth
// and sends nothing but GET requests.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed ui
var assets embed.FS

// CSP allows the console's own files and API only: no inline script or
// style, no other origin, no frames, no forms. Links to the repository
// browser and the tracing UI are plain navigations the user chooses.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console under /ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
