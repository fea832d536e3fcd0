package source

import (
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// RemoteAuth is everything one network operation against a Git remote
// needs, for writers that live outside this package (the status branch
// writer pushes to the same kinds of remote GitSource fetches from). It
// exists so credential handling — files re-read per use, no secrets in
// URLs, SSH host keys always checked, secrets scrubbed from errors — is
// written once.
type RemoteAuth struct {
	// URL is the remote in the form go-git expects.
	URL string
	// Display is the remote for messages and logs; it never holds a secret.
	Display string
	// Method is the go-git auth method; nil for anonymous access.
	Method transport.AuthMethod
	// CABundle holds extra PEM CA certificates for https:// remotes.
	CABundle []byte

	secrets []string
}

// Remote parses raw (the same forms GitOptions.URL accepts) and loads the
// credentials for it. Call it before every operation, as GitSource does,
// so a rotated secret is picked up. insecureHTTP allows sending
// credentials over plain http://. Errors are permanent (ErrConfig or
// ErrCredentialInURL) and hold no secret.
func (c Credentials) Remote(raw string, insecureHTTP bool) (*RemoteAuth, error) {
	u, display, err := parseRemote(raw)
	if err != nil {
		return nil, err
	}
	a, err := c.load(u, insecureHTTP)
	if err != nil {
		return nil, classify("git remote "+display, err, a.secrets)
	}
	return &RemoteAuth{URL: u.String(), Display: display, Method: a.method, CABundle: a.ca, secrets: a.secrets}, nil
}

// Scrub wraps err as "op: err" with every loaded secret removed from its
// text, classified like GitSource's errors: Transient and Permanent (and
// the reasons ErrAuth, ErrRepoNotFound, ...) work on the result. A nil err
// stays nil.
func (r *RemoteAuth) Scrub(op string, err error) error {
	return classify(op, err, r.secrets)
}
