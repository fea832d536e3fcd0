package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// GitOptions configure a GitSource.
type GitOptions struct {
	// URL of the remote: https://, http://, ssh://, git://, file://,
	// scp-style or a plain path. It must not hold credentials.
	URL string
	// Branch to follow; "main" when empty.
	Branch string
	// Path is the mesh's directory inside the repository; "" is the root.
	Path string
	// CacheDir keeps the local clone on disk (the lead passes
	// <state-dir>/git) so a restart fetches only what is new. Empty keeps
	// it in memory.
	CacheDir string
	// Credentials name the files or environment variables holding secrets.
	Credentials Credentials
	// InsecureHTTPCredentials allows sending credentials over plain
	// http://, for local development only.
	InsecureHTTPCredentials bool
	// Timeout bounds each network operation; 60s when zero.
	Timeout time.Duration
	// MaxFetchSize bounds the bytes one fetch may receive (the packfile);
	// DefaultMaxFetchSize when zero. serve passes --max-repo-size: a
	// depth-1 fetch is the tip tree compressed, so a repository whose
	// files fit the bound fits it too, and one that does not is refused
	// before it fills memory or disk. Over it the fetch is aborted, nothing
	// partial is kept, and Latest returns a permanent ErrFetchTooLarge.
	MaxFetchSize int64
}

// GitStats count network operations, so metrics (and tests) can see that an
// unchanged remote costs one ls-remote and no fetch.
type GitStats struct {
	Lists   int64 // ls-remote round trips
	Fetches int64 // fetches, including the first (clone)
	Clones  int64 // fetches into an empty local repository
}

// GitSource follows one branch of a Git remote. It keeps a shallow local
// clone (in memory or under CacheDir), asks the remote for the branch tip
// first (ls-remote) and fetches only when it moved. Files are served from
// the object store of the commit, without a checkout.
type GitSource struct {
	opts    GitOptions
	url     *url.URL
	display string
	refspec config.RefSpec
	local   plumbing.ReferenceName // refs/remotes/origin/<branch>

	mu      sync.Mutex  // one Latest at a time
	repoMu  *sync.Mutex // guards repo storage: fetches vs. Files readers
	repo    *git.Repository
	store   *boundedStorage
	last    Revision
	refused plumbing.Hash // a tip whose fetch was too large
	refusal error
	lists   atomic.Int64
	fetches atomic.Int64
	clones  atomic.Int64
}

var _ Source = (*GitSource)(nil)

// NewGit checks the options and returns a source; it does no network I/O.
func NewGit(opts GitOptions) (*GitSource, error) {
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxFetchSize <= 0 {
		opts.MaxFetchSize = DefaultMaxFetchSize
	}
	u, display, err := parseRemote(opts.URL)
	if err != nil {
		return nil, err
	}
	if !plumbing.NewBranchReferenceName(opts.Branch).IsBranch() || strings.ContainsAny(opts.Branch, " ~^:?*[\\") {
		return nil, permanent(ErrConfig, fmt.Sprintf("invalid branch name %q", opts.Branch))
	}
	local := plumbing.NewRemoteReferenceName("origin", opts.Branch)
	g := &GitSource{
		opts:    opts,
		url:     u,
		display: display,
		local:   local,
		refspec: config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(opts.Branch), local)),
	}
	return g, nil
}

// String is the remote URL (credentials are refused at construction).
func (g *GitSource) String() string { return g.display }

// Stats returns the network operation counters.
func (g *GitSource) Stats() GitStats {
	return GitStats{Lists: g.lists.Load(), Fetches: g.fetches.Load(), Clones: g.clones.Load()}
}

// Latest implements Source.
func (g *GitSource) Latest(ctx context.Context) (Revision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, err := g.opts.Credentials.load(g.url, g.opts.InsecureHTTPCredentials)
	if err != nil {
		return Revision{}, classify("git source "+g.display, err, nil)
	}
	op := fmt.Sprintf("fetch %s@%s", g.display, g.opts.Branch)
	tip, err := g.remoteTip(ctx, a)
	if err != nil {
		return Revision{}, classify(op, err, a.secrets)
	}
	if g.last.ID == tip.String() {
		return g.last, nil
	}
	if tip == g.refused {
		// Refetching the same commit would fetch the same bytes.
		return Revision{}, g.refusal
	}
	if err := g.openRepo(); err != nil {
		return Revision{}, classify(op, err, a.secrets)
	}
	have, _ := g.repo.Reference(g.local, true)
	if have == nil || have.Hash() != tip {
		if err := g.fetch(ctx, a); err != nil {
			err = classify(op, err, a.secrets)
			if errors.Is(err, ErrFetchTooLarge) {
				g.refused, g.refusal = tip, err
			}
			return Revision{}, err
		}
		if err := g.compact(tip); err != nil {
			return Revision{}, classify(op, err, a.secrets)
		}
	}
	rev, err := g.revision()
	if err != nil {
		return Revision{}, classify(op, err, a.secrets)
	}
	g.last = rev
	return rev, nil
}

// remoteTip asks the remote where the branch points, without fetching.
func (g *GitSource) remoteTip(ctx context.Context, a auth) (plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	g.lists.Add(1)
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{g.url.String()}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: a.method, CABundle: a.ca})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("ls-remote: %w", err)
	}
	want := plumbing.NewBranchReferenceName(g.opts.Branch)
	for _, r := range refs {
		if r.Name() == want {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, permanent(ErrBranchNotFound, fmt.Sprintf("branch %q not found", g.opts.Branch))
}

// openRepo prepares the local clone: in memory, or a bare repository under
// CacheDir named after the URL and branch, so two sources never share one.
// Both are go-git filesystem storage (memfs in memory), so the fetch bound
// and compaction work the same way for both.
func (g *GitSource) openRepo() error {
	if g.repo != nil {
		return nil
	}
	g.repoMu = &sync.Mutex{}
	var fs billy.Filesystem
	if g.opts.CacheDir == "" {
		fs = memfs.New()
	} else {
		sum := sha256.Sum256([]byte(g.url.String() + "\x00" + g.opts.Branch))
		fs = osfs.New(filepath.Join(g.opts.CacheDir, hex.EncodeToString(sum[:8])))
	}
	st := g.newStorage(fs)
	repo, err := git.Open(st, nil)
	if err != nil {
		// Missing or damaged: start over; it is only a cache.
		if g.opts.CacheDir != "" {
			if rmErr := os.RemoveAll(fs.Root()); rmErr != nil {
				return fmt.Errorf("reset cache %s: %w", fs.Root(), rmErr)
			}
			st = g.newStorage(osfs.New(fs.Root()))
		}
		repo, err = git.Init(st, nil)
	}
	if err != nil {
		return fmt.Errorf("init local clone: %w", err)
	}
	if _, err := repo.Remote("origin"); errors.Is(err, git.ErrRemoteNotFound) {
		_, err = repo.CreateRemote(&config.RemoteConfig{
			Name: "origin", URLs: []string{g.url.String()}, Fetch: []config.RefSpec{g.refspec},
		})
		if err != nil {
			return fmt.Errorf("configure local clone: %w", err)
		}
	}
	g.repo, g.store = repo, st
	return nil
}

func (g *GitSource) newStorage(fs billy.Filesystem) *boundedStorage {
	st := newBoundedStorage(fs)
	st.drain = g.url.Scheme == "file"
	return st
}

// compact bounds the local clone after a fetch of tip: when its object
// store holds more than compactPacks packs or more bytes than one fetch
// may bring, it is rewritten to the objects of tip and of the revision
// returned before (still being read, perhaps).
func (g *GitSource) compact(tip plumbing.Hash) error {
	g.repoMu.Lock()
	defer g.repoMu.Unlock()
	size, packs, err := objectStoreSize(g.store.Filesystem())
	if err != nil {
		return fmt.Errorf("measure local clone: %w", err)
	}
	if packs <= compactPacks && size <= g.opts.MaxFetchSize {
		return nil
	}
	keep := []plumbing.Hash{tip}
	if g.last.ID != "" {
		keep = append(keep, plumbing.NewHash(g.last.ID))
	}
	if err := compact(g.store.Storage, keep); err != nil {
		return fmt.Errorf("compact local clone: %w", err)
	}
	// go-git caches pack indexes: drop them, so this storage (which the
	// revisions handed out read through) finds the kept objects in the
	// new pack.
	g.store.Reindex()
	return nil
}

// fetch brings the branch tip into the local clone with depth 1: the mesh
// needs one tree, not history, and a force-push costs no more than a push.
func (g *GitSource) fetch(ctx context.Context, a auth) error {
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	g.repoMu.Lock()
	defer g.repoMu.Unlock()
	if ref, _ := g.repo.Reference(g.local, true); ref == nil {
		g.clones.Add(1)
	}
	g.fetches.Add(1)
	g.store.limit, g.store.over = g.opts.MaxFetchSize, false
	// go-git records the new shallow commit before it reads the pack:
	// put the list back when the pack does not arrive.
	shallow, _ := g.store.Shallow()
	err := g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  g.url.String(),
		RefSpecs:   []config.RefSpec{g.refspec},
		Depth:      1,
		Auth:       a.method,
		CABundle:   a.ca,
		Tags:       git.NoTags,
		Force:      true,
	})
	if g.store.over || (err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate)) {
		g.store.SetShallow(shallow)
		if g.store.over {
			// Whatever the transport made of the aborted copy, the cause
			// is the bound.
			return tooLarge(g.opts.MaxFetchSize)
		}
		return err
	}
	return nil
}

// revision builds the Revision for the fetched branch tip.
func (g *GitSource) revision() (Revision, error) {
	g.repoMu.Lock()
	defer g.repoMu.Unlock()
	ref, err := g.repo.Reference(g.local, true)
	if err != nil {
		return Revision{}, fmt.Errorf("read %s: %w", g.local, err)
	}
	c, err := g.repo.CommitObject(ref.Hash())
	if err != nil {
		return Revision{}, fmt.Errorf("read commit %s: %w", ref.Hash(), err)
	}
	files, err := commitFS(g.repo.Storer, c, g.opts.Path, g.repoMu)
	if err != nil {
		return Revision{}, err
	}
	id := c.Hash.String()
	return Revision{
		ID:      id,
		Short:   ShortID(id),
		Files:   files,
		Message: strings.TrimSpace(c.Message),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Time:    c.Committer.When.UTC(),
	}, nil
}
