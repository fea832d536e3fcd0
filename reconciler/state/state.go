// Package state persists the last good configuration under --state-dir, so
// that a restart with Git unreachable serves exactly what was served before:
// the same resources, byte for byte, under the same versions.
//
// The file stores every distinct resource once (the same cluster seen by 500
// sidecars is written once) and each class as references into that table,
// mirroring how the xDS server shares resources in memory.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// secretType is the SDS Secret type URL, the one type never persisted.
const secretType = snapshot.SecretType

// fileName is the last good state inside the state dir.
const fileName = "last-good.gob"

// formatVersion changes when the file layout does; an unknown version is
// refused rather than misread.
const formatVersion = 1

// magic starts every state file so a stray file is not decoded as state.
var magic = []byte("gitmesh-state\n")

// LastGood is what was last served successfully, with enough about its
// revision to report it in status after a restart.
type LastGood struct {
	Revision  string
	Message   string
	Author    string
	Committed time.Time
	AppliedAt time.Time
	// Update is what was served, without secrets: Save drops every SDS
	// Secret, so no private key is ever written here.
	Update xds.Update
	// Secrets names what each class's secrets were made from, so that a
	// restart re-issues them from the persisted CA. Nil in files written
	// before secrets existed.
	Secrets map[string]ClassSecrets
	// Origin is the source the state was written for. Zero in files
	// written before origins were recorded: LoadFor accepts those.
	Origin Origin
}

// Origin names the source a state dir's last good state came from: a Git
// remote, branch and directory inside it, or a directory on disk. It has
// the fields of source.Origin, which converts to it.
type Origin struct {
	URL, Branch, Path string
	Dir               string
}

// String describes the origin for errors: "URL branch B path P" or
// "directory D".
func (o Origin) String() string {
	switch {
	case o.Dir != "":
		return "directory " + o.Dir
	case o.Path != "":
		return o.URL + " branch " + o.Branch + " path " + o.Path
	}
	return o.URL + " branch " + o.Branch
}

// ClassSecrets is the secrets plan of one class as render emits it
// (render.Bundle.Secrets): its SPIFFE identity and the SDS names of the
// gateway credentials it serves. Names only: the certificates and keys are
// re-issued or re-read, never stored. gob encodes it by field names, so
// files written when the type was declared here still load.
type ClassSecrets = snapshot.ClassSecrets

// ErrNotFound means the state dir holds no last good state yet.
var ErrNotFound = errors.New("no last good state")

// ErrOtherOrigin means the state dir holds the last good state of another
// source (another repository, branch or --path).
var ErrOtherOrigin = errors.New("last good state of another source")

type storedResource struct {
	TypeURL, Name, Version string
	Value                  []byte
}

type storedClass struct {
	Name string
	// Types lists type URLs; Refs[i] indexes Resources for Types[i].
	Types []string
	Refs  [][]int32
}

type file struct {
	Format    int
	Revision  string
	Message   string
	Author    string
	Committed time.Time
	AppliedAt time.Time
	Resources []storedResource
	Classes   []storedClass
	Secrets   map[string]ClassSecrets
	// Origin was added without a format change: gob leaves it zero when
	// reading an older file.
	Origin Origin
}

// Save writes lg to dir atomically: a crash mid-write leaves the previous
// state in place, never a torn file.
func Save(dir string, lg *LastGood) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(encode(lg)); err != nil {
		return fmt.Errorf("save state: encode: %w", err)
	}
	sum := sha256.Sum256(body.Bytes())

	tmp, err := os.CreateTemp(dir, fileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	for _, part := range [][]byte{magic, sum[:], body.Bytes()} {
		if _, err := tmp.Write(part); err != nil {
			tmp.Close()
			return fmt.Errorf("save state: write %s: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, fileName)); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Load reads the last good state from dir. It returns ErrNotFound when there
// is none, and an error naming the file when it is corrupt or of another
// format; the caller then starts empty and waits for Git.
func Load(dir string) (*LastGood, error) {
	path := filepath.Join(dir, fileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if !bytes.HasPrefix(raw, magic) || len(raw) < len(magic)+sha256.Size {
		return nil, fmt.Errorf("load state %s: not a gitmesh state file", path)
	}
	raw = raw[len(magic):]
	sum, body := raw[:sha256.Size], raw[sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("load state %s: checksum mismatch (file corrupt)", path)
	}
	var f file
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&f); err != nil {
		return nil, fmt.Errorf("load state %s: decode: %w", path, err)
	}
	if f.Format != formatVersion {
		return nil, fmt.Errorf("load state %s: format %d, this gitmesh reads %d", path, f.Format, formatVersion)
	}
	lg, err := decode(&f)
	if err != nil {
		return nil, fmt.Errorf("load state %s: %w", path, err)
	}
	return lg, nil
}

// LoadFor is Load for the source want: it refuses, with an error wrapping
// ErrOtherOrigin that names both, a state written for another source, so
// that a state dir filled for `--path staging` is never served for
// `--path prod`. A file without an origin (written before origins were
// recorded) is accepted; the next save records one.
func LoadFor(dir string, want Origin) (*LastGood, error) {
	lg, err := Load(dir)
	if err != nil {
		return nil, err
	}
	if lg.Origin != (Origin{}) && want != (Origin{}) && lg.Origin != want {
		return nil, fmt.Errorf("%w: %s holds the last good state of %s, not of %s; refusing to restore it",
			ErrOtherOrigin, filepath.Join(dir, fileName), lg.Origin, want)
	}
	return lg, nil
}

type resKey struct{ typeURL, name, version string }

func encode(lg *LastGood) *file {
	f := &file{
		Format: formatVersion, Revision: lg.Revision, Message: lg.Message, Author: lg.Author,
		Committed: lg.Committed, AppliedAt: lg.AppliedAt, Secrets: lg.Secrets, Origin: lg.Origin,
	}
	index := map[resKey]int32{}
	for _, class := range slices.Sorted(maps.Keys(lg.Update.Classes)) {
		cfg := lg.Update.Classes[class]
		sc := storedClass{Name: class}
		if cfg != nil {
			// Stored flat (a shared part's resources in every class that
			// has it): the file format predates ClassConfig.Shared.
			for _, typeURL := range cfg.Types() {
				if typeURL == secretType {
					// Secrets hold private keys; a restart re-issues them.
					continue
				}
				list := cfg.List(typeURL)
				refs := make([]int32, 0, len(list))
				for _, r := range list {
					k := resKey{typeURL, r.Name, r.Version}
					i, ok := index[k]
					if !ok {
						i = int32(len(f.Resources))
						index[k] = i
						f.Resources = append(f.Resources, storedResource{TypeURL: typeURL, Name: r.Name, Version: r.Version, Value: r.Any.GetValue()})
					}
					refs = append(refs, i)
				}
				sc.Types = append(sc.Types, typeURL)
				sc.Refs = append(sc.Refs, refs)
			}
		}
		f.Classes = append(f.Classes, sc)
	}
	return f
}

func decode(f *file) (*LastGood, error) {
	shared := make([]*xds.Resource, len(f.Resources))
	for i, r := range f.Resources {
		shared[i] = &xds.Resource{Name: r.Name, Version: r.Version, Any: &anypb.Any{TypeUrl: r.TypeURL, Value: r.Value}}
	}
	u := xds.Update{Revision: f.Revision, Classes: make(map[string]*xds.ClassConfig, len(f.Classes))}
	for _, c := range f.Classes {
		if len(c.Types) != len(c.Refs) {
			return nil, fmt.Errorf("class %q: %d types but %d reference lists", c.Name, len(c.Types), len(c.Refs))
		}
		cfg := &xds.ClassConfig{Resources: make(map[string][]*xds.Resource, len(c.Types))}
		for ti, typeURL := range c.Types {
			list := make([]*xds.Resource, 0, len(c.Refs[ti]))
			for _, ref := range c.Refs[ti] {
				if ref < 0 || int(ref) >= len(shared) {
					return nil, fmt.Errorf("class %q: reference %d out of range", c.Name, ref)
				}
				list = append(list, shared[ref])
			}
			cfg.Resources[typeURL] = list
		}
		u.Classes[c.Name] = cfg
	}
	if err := u.Validate(); err != nil {
		return nil, fmt.Errorf("stored update is invalid: %w", err)
	}
	return &LastGood{
		Revision: f.Revision, Message: f.Message, Author: f.Author,
		Committed: f.Committed, AppliedAt: f.AppliedAt, Update: u, Secrets: f.Secrets, Origin: f.Origin,
	}, nil
}
