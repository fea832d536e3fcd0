package ociimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestTarball: the tarball's config runs `gitmesh serve` as the non-root
// user, and its one layer holds the binary, executable, where the
// entrypoint says.
func TestTarball(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "gitmesh")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	o := Options{Binary: bin, CABundle: ca, Arch: "amd64", Version: "v1.2.3"}
	if err := Write(out, "ghcr.io/gitmesh/gitmesh:v1.2.3", o); err != nil {
		t.Fatal(err)
	}
	img := readArchive(t, out)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"/usr/local/bin/gitmesh"}, cf.Config.Entrypoint); d != "" {
		t.Errorf("Entrypoint (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"serve"}, cf.Config.Cmd); d != "" {
		t.Errorf("Cmd (-want +got):\n%s", d)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532", cf.Config.User)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type = %s", mt)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]*tar.Header{}
	contents := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		contents[h.Name], _ = io.ReadAll(tr)
	}
	b := got["usr/local/bin/gitmesh"]
	if b == nil || b.Mode != 0o755 || !bytes.Equal(contents["usr/local/bin/gitmesh"], []byte("\x7fELF not really")) {
		t.Errorf("binary entry = %+v", b)
	}
	for _, p := range []string{"usr/", "usr/local/", "usr/local/bin/", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "tmp/", "home/nonroot/"} {
		if got[p] == nil {
			t.Errorf("layer lacks %s", p)
		}
	}
	if h := got["home/nonroot/"]; h != nil && h.Uid != UID {
		t.Errorf("home/nonroot/ owned by %d, want %d", h.Uid, UID)
	}

	// The same inputs give the same bytes.
	out2 := filepath.Join(dir, "image2.tar")
	if err := Write(out2, "ghcr.io/gitmesh/gitmesh:v1.2.3", o); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b2) {
		t.Error("two builds of the same inputs differ")
	}
}

// readArchive unpacks an OCI layout tar and returns its one image, checking
// the index names it.
func readArchive(t *testing.T, archive string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI layout: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(m.Manifests))
	}
	if got := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "v1.2.3" {
		t.Errorf("ref.name = %q", got)
	}
	if got := m.Manifests[0].Annotations["io.containerd.image.name"]; got != "ghcr.io/gitmesh/gitmesh:v1.2.3" {
		t.Errorf("io.containerd.image.name = %q", got)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestDockerfileAgrees: deploy/Dockerfile builds the image make image
// builds: a static binary at the same path, the same user, entrypoint and
// command.
func TestDockerfileAgrees(t *testing.T) {
	b, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0",
		"COPY --from=build /out/gitmesh " + BinaryPath + "\n",
		"USER 65532:65532\n",
		`ENTRYPOINT ["` + BinaryPath + `"]` + "\n",
		`CMD ["serve"]` + "\n",
		"EXPOSE 15010 15014 15017\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
}
