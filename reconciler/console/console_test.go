package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestAssetsStayHome: the console loads nothing from another origin and
// sends nothing but GET: no absolute URL but the SVG namespace, no inline
// script or style (the CSP would refuse them anyway), no form, no other
// method, no beacon or websocket. The browser test watches the real page
// too; this one names the line that broke the rule.
func TestAssetsStayHome(t *testing.T) {
	forbidden := []*regexp.Regexp{
		regexp.MustCompile(`https?://(?:[^w]|w[^w]|ww[^w]|www[^.]|www\.[^w])`), // any URL but www.w3.org
		regexp.MustCompile(`(?i)method\s*:\s*["'](?:POST|PUT|PATCH|DELETE)`),
		regexp.MustCompile(`(?i)<form|sendBeacon|WebSocket|EventSource|XMLHttpRequest|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`),
		regexp.MustCompile(`(?i)<script>|<style|\sstyle=|\son[a-z]+=`),
		regexp.MustCompile(`@import|url\(\s*["']?(?:https?:|//)`),
	}
	allowedURL := regexp.MustCompile(`http://www\.w3\.org/2000/svg`)
	err := fs.WalkDir(assets, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			line = allowedURL.ReplaceAllString(line, "")
			for _, re := range forbidden {
				if re.MatchString(line) {
					t.Errorf("%s:%d: %q matches %s", p, i+1, strings.TrimSpace(line), re)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHandlerHeaders(t *testing.T) {
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/console.css"} {
		rec := httptest.NewRecorder()
		http.StripPrefix("", Handler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, rec.Code)
		}
		if rec.Header().Get("Content-Security-Policy") != CSP || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", p, rec.Header())
		}
	}
}
