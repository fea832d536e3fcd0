package pipeline

import (
	"fmt"
	"strconv"

	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/schema/model"
)

// NeedsCredentials returns a GM0601 warning for every gateway listener that
// names a TLS credential: without a credentials source (validate, check)
// whether serve has it cannot be known, and serve refuses a revision
// naming one its --credentials-dir lacks. The warning names the files
// serve will read, so the operator can provision them before merging.
func NeedsCredentials(m *model.Mesh) model.Diagnostics {
	if m == nil {
		return nil
	}
	var out model.Diagnostics
	for _, gn := range m.GatewayNames() {
		for i, l := range m.Gateways[gn].Listeners {
			if l.TLS == nil || l.TLS.CredentialName == "" || l.TLS.Mode == model.TLSPassthrough {
				continue
			}
			path := model.Path("gateways", gn) + ".listeners[" + strconv.Itoa(i) + "].tls.credentialName"
			files := "{tls.crt,tls.key}"
			if l.TLS.Mode == model.TLSMutual {
				files = "{tls.crt,tls.key,ca.crt}"
			}
			out = append(out, model.Diagnostic{
				Code:     policies.CodeNeedsServe,
				Severity: model.SeverityWarning,
				Pos:      m.Sources.Lookup(path),
				Path:     path,
				Message: fmt.Sprintf("serve needs credential %q in --credentials-dir (DIR/%s/%s)",
					l.TLS.CredentialName, l.TLS.CredentialName, files),
			})
		}
	}
	return out
}
