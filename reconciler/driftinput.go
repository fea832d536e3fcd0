package reconciler

import (
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/drift"
	"github.com/gitmesh/gitmesh/schema/model"
)

// DriftInput returns the reconciler's part of a drift report's input: the
// served mesh and endpoints, the served and newest revisions, and the
// certificates in use. The caller adds the xDS server's and Kubernetes'
// views. Safe for concurrent use.
func (r *Reconciler) DriftInput() drift.Input {
	r.mu.RLock()
	served := r.servedID()
	in := drift.Input{Revision: drift.Revision{Served: served}}
	if a := r.status.LastAttempt; a != nil && a.Result == apiv1.AttemptFailed && a.Revision.ID != "" && a.Revision.ID != served {
		in.Revision.Newest = a.Revision.ID
		in.Revision.NewestStatus = fmt.Sprintf("failed at %s: %s", a.FailedStep, a.Error)
	}
	var credNames []string
	if r.live != nil {
		in.Mesh, in.Endpoints = r.live.mesh, r.live.endpoints
		credNames = credentialNames(r.live.mesh)
	}
	rotationErr := r.rotationErr
	r.mu.RUnlock()

	if c := r.opts.CA; c != nil {
		for _, cert := range c.Certificates() {
			kind := "intermediate"
			if cert.IsCA && cert.CheckSignatureFrom(cert) == nil {
				kind = "root"
			}
			in.Certificates = append(in.Certificates, drift.Certificate{Kind: kind, Name: certName(cert), NotAfter: cert.NotAfter})
		}
		if rotationErr != "" {
			in.Certificates = append(in.Certificates, drift.Certificate{Kind: "workload", Name: "rotation", RenewError: rotationErr})
		}
	}
	if r.opts.Credentials != nil {
		for _, name := range credNames {
			in.Certificates = append(in.Certificates, credentialCert(r.opts.Credentials, name))
		}
	}
	return in
}

// credentialNames lists the gateway credentials the mesh serves.
func credentialNames(m *model.Mesh) []string {
	names := map[string]bool{}
	for _, g := range m.Gateways {
		for _, l := range g.Listeners {
			if l.TLS == nil || l.TLS.CredentialName == "" || l.TLS.Mode == model.TLSPassthrough {
				continue
			}
			names[l.TLS.CredentialName] = true
			if l.TLS.Mode == model.TLSMutual {
				names[l.TLS.CredentialName+"-cacert"] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// certName names a CA certificate by its subject, or its serial when the
// subject is empty (SPIFFE roots often have none).
func certName(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "serial:" + c.SerialNumber.Text(16)
}

// credentialCert reads a gateway credential's leaf expiry; a credential
// that no longer loads is reported as failing to renew.
func credentialCert(src CredentialSource, name string) drift.Certificate {
	out := drift.Certificate{Kind: "gateway", Name: name}
	if strings.HasSuffix(name, "-cacert") {
		out.Kind = "gateway-ca"
	}
	c, err := src.Credential(strings.TrimSuffix(name, "-cacert"))
	if err != nil {
		out.RenewError = err.Error()
		return out
	}
	pem := c.CertPEM
	if out.Kind == "gateway-ca" {
		pem = c.CACertPEM
	}
	certs, err := ca.ParseCerts(pem)
	if err != nil || len(certs) == 0 {
		out.RenewError = fmt.Sprintf("credential %q has no readable certificate", name)
		return out
	}
	out.NotAfter = certs[0].NotAfter
	return out
}
