package source

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The two kinds of source failure, after Flux: a transient one (network,
// server down, timeout) is worth retrying with backoff; a permanent one
// (credentials refused, branch or path missing, bad URL) will not fix
// itself, so the reconciler should report it as stalled and wait for a new
// revision or new configuration instead of hammering the server.
var (
	ErrTransient = errors.New("transient source error")
	ErrPermanent = errors.New("permanent source error")
)

// Reasons, so callers and tests can tell permanent failures apart. Each
// also matches ErrPermanent with errors.Is.
var (
	ErrAuth            = errors.New("authentication failed")
	ErrBranchNotFound  = errors.New("branch not found")
	ErrRepoNotFound    = errors.New("repository not found")
	ErrCredentialInURL = errors.New("repository URL must not carry credentials")
	ErrConfig          = errors.New("invalid source configuration")
)

// Transient reports whether err is worth retrying. Unknown errors count as
// transient: a retry with backoff is cheap, a wrongly stalled mesh is not.
func Transient(err error) bool {
	return err != nil && !errors.Is(err, ErrPermanent)
}

// Permanent reports whether err will not go away by retrying.
func Permanent(err error) bool { return errors.Is(err, ErrPermanent) }

// sourceError carries a scrubbed message and a classification. It does not
// unwrap to the raw cause, so no caller can reach text that might hold a
// secret; errors.Is still sees the kind, the reason and the cause.
type sourceError struct {
	msg    string
	kind   error // ErrTransient or ErrPermanent
	reason error // a specific sentinel, or nil
	cause  error
}

func (e *sourceError) Error() string { return e.msg }

func (e *sourceError) Is(target error) bool {
	if target == e.kind || (e.reason != nil && target == e.reason) {
		return true
	}
	return e.cause != nil && errors.Is(e.cause, target)
}

// classify wraps err as "op: err" with its kind and reason, replacing any
// of the secrets in its text. A nil err stays nil.
func classify(op string, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var se *sourceError
	if errors.As(err, &se) {
		return &sourceError{msg: scrub(op+": "+se.msg, secrets), kind: se.kind, reason: se.reason, cause: se.cause}
	}
	kind, reason := kindOf(err)
	return &sourceError{msg: scrub(op+": "+err.Error(), secrets), kind: kind, reason: reason, cause: err}
}

// permanent builds a permanent error with a reason, for failures found by
// this package rather than by go-git.
func permanent(reason error, msg string) error {
	return &sourceError{msg: msg, kind: ErrPermanent, reason: reason}
}

func kindOf(err error) (kind, reason error) {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.Is(err, ErrPermanent):
		return ErrPermanent, nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrTransient, nil
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		errors.As(err, &keyErr), errors.As(err, &revoked):
		return ErrPermanent, ErrAuth
	case errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, transport.ErrEmptyRemoteRepository):
		return ErrPermanent, ErrRepoNotFound
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		return ErrPermanent, ErrBranchNotFound
	case errors.Is(err, ErrPathNotFound):
		return ErrPermanent, ErrPathNotFound
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTransient, nil
	}
	// go-git reports some SSH handshake failures only as text.
	if strings.Contains(err.Error(), "unable to authenticate") {
		return ErrPermanent, ErrAuth
	}
	return ErrTransient, nil
}

// scrub replaces every secret in s. Secrets shorter than 4 bytes are
// skipped: replacing "a" everywhere would garble the message and such a
// secret protects nothing anyway.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
