package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// GitHub handles POST /hooks/github: the body must carry a valid
// X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the body with the
// secret). The legacy SHA-1 X-Hub-Signature is not accepted. A verified
// "ping" event (sent when the hook is created) answers 200 and triggers
// nothing; every other verified event triggers.
func GitHub(cfg Config) http.Handler {
	return newHandler(provider{
		name: "github",
		verify: func(r *http.Request, body, secret []byte) bool {
			sig, ok := header(r, "X-Hub-Signature-256")
			return ok && validHMAC(sig, body, secret)
		},
		ping:  func(r *http.Request) bool { return r.Header.Get("X-GitHub-Event") == "ping" },
		event: func(r *http.Request) string { return r.Header.Get("X-GitHub-Event") },
	}, cfg)
}

// GitLab handles POST /hooks/gitlab: GitLab sends the configured secret
// token verbatim in X-Gitlab-Token (it does not sign the body).
func GitLab(cfg Config) http.Handler {
	return newHandler(provider{
		name: "gitlab",
		verify: func(r *http.Request, _, secret []byte) bool {
			tok, ok := header(r, "X-Gitlab-Token")
			return ok && equal([]byte(tok), secret)
		},
		event: func(r *http.Request) string { return r.Header.Get("X-Gitlab-Event") },
	}, cfg)
}

// Generic handles POST /hooks/generic for anything else (Gitea, Bitbucket
// via a relay, CI jobs, curl): either X-Gitmesh-Signature ("sha256=" + hex
// HMAC-SHA256 of the body), or "Authorization: Bearer SECRET".
func Generic(cfg Config) http.Handler {
	return newHandler(provider{
		name: "generic",
		verify: func(r *http.Request, body, secret []byte) bool {
			if sig, ok := header(r, "X-Gitmesh-Signature"); ok && validHMAC(sig, body, secret) {
				return true
			}
			auth, ok := header(r, "Authorization")
			if !ok {
				return false
			}
			scheme, tok, found := strings.Cut(auth, " ")
			return found && strings.EqualFold(scheme, "Bearer") && equal([]byte(strings.TrimSpace(tok)), secret)
		},
		event: func(r *http.Request) string { return r.Header.Get("X-Gitmesh-Event") },
	}, cfg)
}

// header returns a header that is present exactly once; a repeated
// authentication header is ambiguous and refused.
func header(r *http.Request, name string) (string, bool) {
	v := r.Header.Values(name)
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// validHMAC checks a "sha256=<hex>" signature of body in constant time.
func validHMAC(sig string, body, secret []byte) bool {
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}

// equal compares two secrets in constant time, including their length:
// comparing digests keeps subtle.ConstantTimeCompare's early exit on a
// length mismatch from revealing the secret's length.
func equal(a, b []byte) bool {
	da, db := sha256.Sum256(a), sha256.Sum256(b)
	return hmac.Equal(da[:], db[:])
}
