package render

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/internal/snapshot"
)

// TestSecretsPlan: every class is planned with its identity, and a gateway
// with the credentials its terminating listeners name (NAME-cacert for
// MUTUAL, nothing for PASSTHROUGH), which are exactly the SDS names its
// listeners ask for.
func TestSecretsPlan(t *testing.T) {
	m := loadCase(t, "ingress")
	b, err := Render(Input{Mesh: m})
	if err != nil {
		t.Fatal(err)
	}
	plan := b.Secrets()
	if len(plan) != len(b.Classes()) {
		t.Fatalf("plan has %d classes, bundle %d", len(plan), len(b.Classes()))
	}
	for _, class := range b.Classes() {
		id, err := Identity(m, class)
		if err != nil {
			t.Fatal(err)
		}
		if plan[class].Identity != id {
			t.Errorf("%s: identity %q, want %q", class, plan[class].Identity, id)
		}
	}
	if got, want := plan["ingress/edge"].Credentials, []string{"api-cert", "api-cert-cacert", "web-cert"}; !slices.Equal(got, want) {
		t.Errorf("ingress/edge credentials = %q, want %q", got, want)
	}
	// The names planned are the names the listeners use.
	asked := map[string]bool{}
	for _, r := range b.Proxy("ingress/edge").Resources(snapshot.ListenerType) {
		collectSDS(t, r.Message, asked)
	}
	for _, name := range plan["ingress/edge"].Credentials {
		if !asked[name] {
			t.Errorf("credential %q is planned but no listener asks for it (asked: %v)", name, asked)
		}
		delete(asked, name)
	}
	delete(asked, SecretDefault)
	delete(asked, SecretRootCA)
	if len(asked) > 0 {
		t.Errorf("listeners ask for secrets the plan does not name: %v", asked)
	}
	for _, class := range b.Classes() {
		if class != "ingress/edge" && len(plan[class].Credentials) > 0 {
			t.Errorf("%s: credentials %q on a class that is not a gateway", class, plan[class].Credentials)
		}
	}
}

// collectSDS records the SDS secret names a listener's filter chains use.
func collectSDS(t *testing.T, msg proto.Message, into map[string]bool) {
	t.Helper()
	for _, fc := range msg.(*listenerv3.Listener).GetFilterChains() {
		ts := fc.GetTransportSocket()
		if ts == nil {
			continue
		}
		var ctx tlsv3.DownstreamTlsContext
		if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
			t.Fatal(err)
		}
		common := ctx.GetCommonTlsContext()
		for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
			into[s.GetName()] = true
		}
		if s := common.GetValidationContextSdsSecretConfig(); s != nil {
			into[s.GetName()] = true
		}
	}
}

// TestSecret: the one builder of Secret protos makes a certificate or a
// validation context, versioned by content, and refuses ambiguous input.
func TestSecret(t *testing.T) {
	cert, err := Secret(SecretDefault, SecretPEM{CertChain: []byte("CERT"), Key: []byte("KEY")})
	if err != nil {
		t.Fatal(err)
	}
	var sec tlsv3.Secret
	if err := proto.Unmarshal(cert.Any.GetValue(), &sec); err != nil {
		t.Fatal(err)
	}
	if cert.Any.GetTypeUrl() != snapshot.SecretType || sec.GetName() != SecretDefault ||
		string(sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes()) != "CERT" ||
		string(sec.GetTlsCertificate().GetPrivateKey().GetInlineBytes()) != "KEY" {
		t.Errorf("certificate secret = %v", &sec)
	}
	again, _ := Secret(SecretDefault, SecretPEM{CertChain: []byte("CERT"), Key: []byte("KEY")})
	if again.Version != cert.Version || len(cert.Version) != 16 {
		t.Errorf("versions %q and %q for one content", cert.Version, again.Version)
	}
	renewed, _ := Secret(SecretDefault, SecretPEM{CertChain: []byte("CERT2"), Key: []byte("KEY")})
	if renewed.Version == cert.Version {
		t.Error("a new certificate kept the version")
	}
	root, err := Secret(SecretRootCA, SecretPEM{TrustedCA: []byte("CA")})
	if err != nil {
		t.Fatal(err)
	}
	sec.Reset()
	if err := proto.Unmarshal(root.Any.GetValue(), &sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.GetValidationContext().GetTrustedCa().GetInlineBytes()) != "CA" {
		t.Errorf("root secret = %v", &sec)
	}
	for _, bad := range []SecretPEM{{}, {CertChain: []byte("C"), Key: []byte("K"), TrustedCA: []byte("CA")}} {
		if _, err := Secret("x", bad); err == nil {
			t.Errorf("Secret(%+v) did not fail", bad)
		}
	}
}

// TestUpdateIsTheBundle: the snapshot the xDS server serves is render's own
// objects: one snapshot.Resource per distinct resource, a layer as one
// Shared config, every config versioned as its Proxy, and a valid update.
func TestUpdateIsTheBundle(t *testing.T) {
	b, err := Render(Input{Mesh: loadCase(t, "bookinfo")})
	if err != nil {
		t.Fatal(err)
	}
	u := b.Update("r1")
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(u.Classes) != len(b.Classes()) {
		t.Fatalf("%d configs for %d classes", len(u.Classes), len(b.Classes()))
	}
	for _, class := range b.Classes() {
		p, cfg := b.Proxy(class), u.Classes[class]
		if cfg != p.Config() || cfg.Version != p.Version() {
			t.Errorf("%s: config %p version %q, proxy %p %q", class, cfg, cfg.Version, p.Config(), p.Version())
		}
		if l := p.Shared(); (l == nil) != (cfg.Shared == nil) || (l != nil && (cfg.Shared != l.Config() || cfg.Shared.Version != l.Version())) {
			t.Errorf("%s: shared config does not match the layer", class)
		}
		for _, typ := range snapshot.Rendered() {
			rs, served := p.Resources(typ), cfg.List(typ)
			if len(rs) != len(served) {
				t.Fatalf("%s %s: %d served, %d rendered", class, typ, len(served), len(rs))
			}
			for i, r := range rs {
				if served[i] != r.Served() || served[i].Name != r.Name || served[i].Version != r.Version || &served[i].Any.Value[0] != &r.Bytes()[0] {
					t.Errorf("%s %s %q: served resource is not render's", class, typ, r.Name)
				}
			}
		}
	}
}

// TestOneSecretBuilder: Secret is the only code in the module that builds
// a Secret proto (tests included; parsing one is fine), so the names,
// layout and versions of secrets have one owner.
func TestOneSecretBuilder(t *testing.T) {
	build := regexp.MustCompile(`(^|[^*\w.])\w+\.Secret\{|\.Secret_\w+\{`)
	var found []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if build.Match(src) {
			found = append(found, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found, []string{"../render/secrets.go"}) {
		t.Errorf("Secret protos are built in %q, want only render/secrets.go", found)
	}
}
