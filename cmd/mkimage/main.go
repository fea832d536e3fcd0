// Command mkimage writes gitmesh's container image as a tarball without a
// Docker engine; `make image` runs it on a static linux build of gitmesh.
//
//	go run ./cmd/mkimage -binary bin/linux/gitmesh -o bin/gitmesh-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/gitmesh/gitmesh/internal/ociimage"
)

func main() {
	var (
		o   ociimage.Options
		out = flag.String("o", "bin/gitmesh-image.tar", "tarball to write")
		tag = flag.String("tag", "ghcr.io/gitmesh/gitmesh:dev", "image name and tag in the tarball")
		now = flag.Bool("created-now", false, "stamp the image with the current time (default: the zero time, so the same inputs give the same image)")
	)
	flag.StringVar(&o.Binary, "binary", "bin/linux/gitmesh", "static gitmesh binary (CGO_ENABLED=0 GOOS=linux)")
	flag.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates for https Git remotes (\"\" for none)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "GOARCH of the binary")
	flag.StringVar(&o.Version, "version", "dev", "version label")
	flag.Parse()
	caSet := false
	flag.Visit(func(f *flag.Flag) { caSet = caSet || f.Name == "ca-bundle" })
	if _, err := os.Stat(o.CABundle); o.CABundle != "" && !caSet && os.IsNotExist(err) {
		// A build machine without ca-certificates still gets an image;
		// it then reaches only http(s) remotes trusted by --git-ca-file.
		fmt.Fprintf(os.Stderr, "mkimage: %s does not exist: the image has no CA bundle (pass -ca-bundle)\n", o.CABundle)
		o.CABundle = ""
	}
	if *now {
		o.Created = time.Now().UTC()
	}
	if err := ociimage.Write(*out, *tag, o); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("mkimage: wrote %s (%s)\n", *out, *tag)
}
