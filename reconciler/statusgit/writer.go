// Package statusgit puts one file on a branch of a Git remote and pushes it
// safely. gitmesh writes its drift report there (status/<cluster>.yaml on
// the gitmesh-status branch), so the history of the branch is the history
// of the mesh's drift, readable with `git log -p`.
//
// The writer never force-pushes: when someone else (a human adding notes,
// another replica) moved the branch between our fetch and our push, it
// fetches again, rebuilds its commit on the new tip and pushes again. Every
// other file on the branch is carried over untouched. A write whose content
// means the same as the file already there makes no commit at all.
package statusgit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitmesh/gitmesh/reconciler/source"
)

// ErrNotFound is returned by Read when the branch or the file is missing:
// the first run of a fresh install, not a failure.
var ErrNotFound = errors.New("status file not found")

// ErrContention is returned by Write when the branch moved under every one
// of MaxAttempts pushes. Nothing was overwritten; the next Write retries.
var ErrContention = errors.New("status branch kept moving")

// Signature names a person (or bot) in a commit.
type Signature struct {
	Name, Email string
}

// Options configure a Writer.
type Options struct {
	// URL of the remote, in the forms the config source accepts: https://,
	// http:// (credentials only with InsecureHTTP), ssh://, git://, file://,
	// scp-style or a plain path. It must not hold credentials.
	URL string
	// Credentials name the files or environment variables holding secrets;
	// they are re-read on every Write, so a rotated secret is picked up.
	Credentials source.Credentials
	// InsecureHTTP allows sending credentials over plain http://.
	InsecureHTTP bool
	// Branch receives the commits; "gitmesh-status" when empty. A missing
	// branch is created as an orphan (its own root commit), so the status
	// history never mixes with the config history. It may also be the
	// config branch itself, with the file under a path the loader ignores.
	Branch string
	// Author of the commits; "gitmesh <gitmesh@localhost>" when empty.
	// Committer defaults to Author.
	Author, Committer Signature
	// SigningKeyFile is an armored OpenPGP private key; when set, every
	// commit is signed with it. SigningPassphraseFile holds its passphrase
	// if the key is encrypted.
	SigningKeyFile, SigningPassphraseFile string
	// MaxAttempts bounds the pushes of one Write when the remote keeps
	// moving (default 5), with jittered backoff between them.
	MaxAttempts int
	// Timeout bounds each network operation; 60s when zero.
	Timeout time.Duration
	// Logger receives retries at debug level; slog.Default() when nil.
	Logger *slog.Logger
	// Now stamps the commits; time.Now when nil.
	Now func() time.Time
}

// Change is one file to put on the branch.
type Change struct {
	// Path inside the repository, slash-separated: "status/prod.yaml".
	Path string
	// Content is the whole new file.
	Content []byte
	// Message is the full commit message (subject, blank line, body).
	Message string
	// Same reports whether the file already on the branch means the same
	// as Content (the caller ignores timestamps, for one); nil compares
	// bytes. When it returns true, Write makes no commit and no push.
	Same func(current []byte) bool
}

// Result says what one Write did.
type Result struct {
	// Commit is the branch tip afterwards: the new commit, or the
	// existing tip when nothing changed.
	Commit string
	// Committed is false when the branch already held the same meaning.
	Committed bool
	// Attempts counts fetch-and-push rounds (1 without contention).
	Attempts int
}

// Writer commits files to one branch of one remote. It keeps a shallow
// clone in memory (depth 1: a status commit needs the tip's tree, not
// history). It is meant for one goroutine: the caller serialises Write and
// Read calls.
type Writer struct {
	o       Options
	display string
	branch  plumbing.ReferenceName
	key     *openpgp.Entity

	repo *git.Repository
	uses int // fetches into repo, to bound in-memory growth

	// beforePush runs between building a commit and pushing it; tests use
	// it to race a competing push in.
	beforePush func()
}

// New checks the options, loads the signing key and validates the
// credentials once, so a misconfiguration shows at start; it does no
// network I/O.
func New(o Options) (*Writer, error) {
	if o.Branch == "" {
		o.Branch = "gitmesh-status"
	}
	if o.Author == (Signature{}) {
		o.Author = Signature{Name: "gitmesh", Email: "gitmesh@localhost"}
	}
	if o.Committer == (Signature{}) {
		o.Committer = o.Author
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	branch := plumbing.NewBranchReferenceName(o.Branch)
	if err := branch.Validate(); err != nil || strings.ContainsAny(o.Branch, " ~^:?*[\\") {
		return nil, fmt.Errorf("status branch: invalid branch name %q", o.Branch)
	}
	ra, err := o.Credentials.Remote(o.URL, o.InsecureHTTP)
	if err != nil {
		return nil, fmt.Errorf("status branch: %w", err)
	}
	w := &Writer{o: o, display: ra.Display, branch: branch}
	if o.SigningKeyFile != "" {
		if w.key, err = loadSigningKey(o.SigningKeyFile, o.SigningPassphraseFile); err != nil {
			return nil, fmt.Errorf("status branch: %w", err)
		}
	}
	return w, nil
}

// String names the remote and branch for logs ("git://host/repo@branch").
func (w *Writer) String() string { return w.display + "@" + w.o.Branch }

// Read returns the file at the branch tip, or an error matching
// ErrNotFound when the branch or the file is missing. The lead seeds
// first-seen times of drift findings from it at start.
func (w *Writer) Read(ctx context.Context, file string) ([]byte, error) {
	if err := checkPath(file); err != nil {
		return nil, err
	}
	ra, err := w.o.Credentials.Remote(w.o.URL, w.o.InsecureHTTP)
	if err != nil {
		return nil, err
	}
	tip, err := w.fetch(ctx, ra)
	if err != nil {
		return nil, ra.Scrub("fetch "+w.String(), err)
	}
	b, ok, err := readFile(w.repo.Storer, tip, file)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", file, w, err)
	}
	if !ok {
		return nil, fmt.Errorf("read %s from %s: %w", file, w, ErrNotFound)
	}
	return b, nil
}

// Write puts c on the branch unless the file there already means the
// same. It never force-pushes: when the remote moved, it fetches the new
// tip, re-checks Same against it (someone may have written the same
// report) and rebuilds its commit on top, up to MaxAttempts times.
func (w *Writer) Write(ctx context.Context, c Change) (Result, error) {
	if err := checkPath(c.Path); err != nil {
		return Result{}, err
	}
	if strings.TrimSpace(c.Message) == "" {
		return Result{}, fmt.Errorf("write %s to %s: empty commit message", c.Path, w)
	}
	same := c.Same
	if same == nil {
		same = func(cur []byte) bool { return bytes.Equal(cur, c.Content) }
	}
	ra, err := w.o.Credentials.Remote(w.o.URL, w.o.InsecureHTTP)
	if err != nil {
		return Result{}, err
	}
	op := fmt.Sprintf("write %s to %s", c.Path, w)
	for attempt := 1; ; attempt++ {
		tip, err := w.fetch(ctx, ra)
		if err != nil {
			return Result{Attempts: attempt}, ra.Scrub(op+": fetch", err)
		}
		cur, ok, err := readFile(w.repo.Storer, tip, c.Path)
		if err != nil {
			return Result{Attempts: attempt}, fmt.Errorf("%s: %w", op, err)
		}
		if ok && same(cur) {
			return Result{Commit: tip.String(), Attempts: attempt}, nil
		}
		commit, err := w.commit(tip, c)
		if err != nil {
			return Result{Attempts: attempt}, fmt.Errorf("%s: %w", op, err)
		}
		if w.beforePush != nil {
			w.beforePush()
		}
		pushErr := w.push(ctx, ra, tip, commit)
		if pushErr == nil {
			return Result{Commit: commit.String(), Committed: true, Attempts: attempt}, nil
		}
		// Whatever the error text says, the remote having moved off the
		// tip we built on is what makes a retry right; anything else
		// (auth, network, a hook refusing) goes back to the caller.
		now, err := w.remoteTip(ctx, ra)
		if err != nil || now == tip {
			return Result{Attempts: attempt}, ra.Scrub(op+": push", pushErr)
		}
		if attempt >= w.o.MaxAttempts {
			return Result{Attempts: attempt}, fmt.Errorf("%s: %w after %d attempts (last: %v)",
				op, ErrContention, attempt, ra.Scrub("push", pushErr))
		}
		w.o.Logger.Debug("status branch moved during push, retrying",
			"remote", w.display, "branch", w.o.Branch, "attempt", attempt,
			"tip", short(tip), "remote_tip", short(now), "error", ra.Scrub("push", pushErr))
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return Result{Attempts: attempt}, fmt.Errorf("%s: %w", op, err)
		}
	}
}

// checkPath refuses paths that are not plain, relative, slash-separated
// file paths inside the repository.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.Contains(p, "\\") {
		return fmt.Errorf("invalid status file path %q", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." || strings.EqualFold(seg, ".git") {
			return fmt.Errorf("invalid status file path %q", p)
		}
	}
	return nil
}

// backoff is 100ms doubling per attempt, capped at 2s, with ±50% jitter so
// two writers that collided do not collide again in lockstep.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 5)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "(none)"
	}
	return h.String()[:7]
}
