// Package ociimage builds gitmesh's container image without a Docker
// engine (none runs where gitmesh is built and tested): one layer holding
// the static binary, a CA bundle for https Git remotes and a passwd entry
// for the non-root user, on an empty base, written as an OCI image layout
// in a tar (an "oci-archive": docker load since Docker 25, podman load,
// skopeo copy oci-archive:, ctr import and so kind load image-archive take
// it). deploy/Dockerfile builds the same layout on distroless/static.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout: the same paths as the Dockerfile's.
const (
	BinaryPath   = "/usr/local/bin/gitmesh"
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// UID is distroless's "nonroot" user, the Deployment's runAsUser.
	UID = 65532
)

// Options describe one image.
type Options struct {
	// Binary is the static gitmesh binary (CGO_ENABLED=0, GOOS=linux).
	Binary string
	// CABundle is a PEM file copied to CABundlePath; "" leaves it out.
	CABundle string
	// Arch is the binary's GOARCH.
	Arch string
	// Version goes into the org.opencontainers.image.version label.
	Version string
	// Created is the image's creation time; the zero time keeps builds
	// of the same inputs byte-identical.
	Created time.Time
}

// Build returns the image.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	files := []file{
		{path: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + strconv.Itoa(UID) + ":" + strconv.Itoa(UID) + ":nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:" + strconv.Itoa(UID) + ":\n")},
		{path: "home/nonroot/", mode: 0o700, uid: UID},
		{path: "tmp/", mode: 0o1777},
		{path: BinaryPath[1:], mode: 0o755, data: bin},
	}
	if o.CABundle != "" {
		ca, err := os.ReadFile(o.CABundle)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		files = append(files, file{path: CABundlePath[1:], mode: 0o644, data: ca})
	}
	layerTar, err := tarFiles(files, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.Arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.Cmd = []string{"serve"}
	cf.Config.User = strconv.Itoa(UID) + ":" + strconv.Itoa(UID)
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/nonroot", "SSL_CERT_FILE=" + CABundlePath}
	cf.Config.ExposedPorts = map[string]struct{}{"15010/tcp": {}, "15014/tcp": {}, "15017/tcp": {}}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "gitmesh",
		"org.opencontainers.image.source":  "https://github.com/gitmesh/gitmesh",
		"org.opencontainers.image.version": o.Version,
	}
	return mutate.ConfigFile(img, cf)
}

// Write builds the image and writes it to path as an OCI layout tar whose
// index names it ref (annotation org.opencontainers.image.ref.name, plus
// io.containerd.image.name with the full name, which ctr import reads).
func Write(path, ref string, o Options) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gitmesh-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.Name(),
	})); err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	var b bytes.Buffer
	if err := tarDir(&b, dir, o.Created); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// tarDir writes the files under dir in name order with fixed owners and
// times, so the archive is as reproducible as the image.
func tarDir(w io.Writer, dir string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar oci layout: %w", err)
	}
	return tw.Close()
}

type file struct {
	path string // relative, "dir/" for a directory
	mode int64
	uid  int
	data []byte
}

// tarFiles writes the layer with its parent directories, root-owned
// unless said otherwise, every time set to mtime.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	seen := map[string]bool{}
	dir := func(p string, mode int64, uid int) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	for _, f := range files {
		// parents first
		for i := 0; i < len(f.path)-1; i++ {
			if f.path[i] == '/' {
				if err := dir(f.path[:i+1], 0o755, 0); err != nil {
					return nil, err
				}
			}
		}
		if f.path[len(f.path)-1] == '/' {
			if err := dir(f.path, f.mode, f.uid); err != nil {
				return nil, err
			}
			continue
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Uid: f.uid, Gid: f.uid, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
