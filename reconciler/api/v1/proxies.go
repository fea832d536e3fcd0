package apiv1

import "time"

// Proxies is GET /api/v1/proxies: every connected proxy's sync state per
// resource type (istioctl proxy-status), and the streams refused recently,
// so a misconfigured proxy is never silent. Revision is the live
// revision's id, the same as Status.Live.ID, so proxies can be compared
// with it without a second request.
type Proxies struct {
	Revision   string      `json:"revision"`
	Proxies    []Proxy     `json:"proxies"`
	Rejections []Rejection `json:"rejections"`
	// RejectionsDropped counts refusals no longer listed: Rejections holds
	// at most 64 entries, the most recently seen.
	RejectionsDropped int64 `json:"rejectionsDropped,omitempty"`
}

// SyncStatus is a proxy's state for one type, named as istioctl
// proxy-status names it, so operators read it without a glossary.
type SyncStatus string

// Sync states, from best to worst.
const (
	// Synced: the proxy ACKed the last response it was sent.
	Synced SyncStatus = "SYNCED"
	// NotSent: the proxy asked, nothing was sent yet (nothing it asked for exists).
	NotSent SyncStatus = "NOT SENT"
	// Stale: a response was sent and is not ACKed yet, or an older one was.
	Stale SyncStatus = "STALE"
	// Nacked: the proxy rejected the last response; it keeps its previous config.
	Nacked SyncStatus = "NACKED"
)

// Proxy is one connected stream of one proxy. Status is the worst of its
// types. Revision is the revision the proxy runs: the live revision when
// Status is SYNCED (a push sends only the types whose content changed, so
// the types' own ACKed revisions lag: a weights-only change sends RDS
// alone, a commit that does not touch the proxy's class sends nothing);
// otherwise the newest revision it ACKed across its types, which it took
// at least in part.
type Proxy struct {
	NodeID      string       `json:"nodeId"`
	Class       string       `json:"class"`
	Protocol    string       `json:"protocol"` // "sotw" or "delta"
	Stream      int64        `json:"stream"`
	Peer        string       `json:"peer,omitempty"`
	ConnectedAt time.Time    `json:"connectedAt"`
	Status      SyncStatus   `json:"status"`
	Revision    string       `json:"revision,omitempty"`
	Types       []TypeStatus `json:"types"`
}

// TypeStatus is what one proxy has of one resource type: what was sent,
// what it ACKed, and its last NACK.
type TypeStatus struct {
	TypeURL       string     `json:"typeUrl"`
	Status        SyncStatus `json:"status"`
	SentVersion   string     `json:"sentVersion,omitempty"`
	SentRevision  string     `json:"sentRevision,omitempty"`
	SentNonce     string     `json:"sentNonce,omitempty"`
	SentResources int        `json:"sentResources"`
	SentAt        time.Time  `json:"sentAt,omitzero"`
	AckedVersion  string     `json:"ackedVersion,omitempty"`
	AckedRevision string     `json:"ackedRevision,omitempty"`
	AckedNonce    string     `json:"ackedNonce,omitempty"`
	AckedAt       time.Time  `json:"ackedAt,omitzero"`
	LastNack      *Nack      `json:"lastNack,omitempty"`
}

// Nack is a proxy's rejection of one response.
type Nack struct {
	Version  string    `json:"version"`
	Revision string    `json:"revision,omitempty"`
	Nonce    string    `json:"nonce"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// Rejection records refused connections and streams: a failed TLS
// handshake (plaintext, no client certificate, another CA's certificate), a
// request over the server's limits, a malformed node id, an unknown class,
// an identity mismatch. So proxies that never got config are not silent.
// Refusals of one peer host for one reason (and one node id, when it is
// within the limits) are one entry: Count says how many, FirstAt and At
// when the first and the last were. Every string is bounded (node id 512
// bytes, error 1 KiB): a peer chooses them.
type Rejection struct {
	NodeID string `json:"nodeId"`
	// Peer is the address of the last refused connection.
	Peer string `json:"peer,omitempty"`
	// Identity is the SPIFFE id of the peer's client certificate, if any.
	Identity string `json:"identity,omitempty"`
	// Code is the gRPC code the stream ended with; Unauthenticated for a
	// failed TLS handshake.
	Code string `json:"code"`
	// Reason is one of a fixed set ("tls-no-certificate", "limit",
	// "unknown-class", …), the label of
	// gitmesh_xds_rejected_connections_total.
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error"`
	Count   int       `json:"count,omitempty"`
	FirstAt time.Time `json:"firstAt,omitzero"`
	// At is when the last refusal of this entry happened.
	At time.Time `json:"at"`
}

// Rejection reasons: Rejection.Reason and the label of
// gitmesh_xds_rejected_connections_total. The set is fixed, so the metric's
// cardinality is; reasons of a failed TLS handshake start with "tls-".
const (
	ReasonTLSPlaintext        = "tls-plaintext"         // not TLS at all
	ReasonTLSNoCertificate    = "tls-no-certificate"    // no client certificate
	ReasonTLSUnknownAuthority = "tls-unknown-authority" // certificate of another CA
	ReasonTLSBadCertificate   = "tls-bad-certificate"   // expired, wrong usage, …
	ReasonTLSPeerAlert        = "tls-peer-alert"        // the client refused us
	ReasonTLSTimeout          = "tls-timeout"           // no handshake in time (10 s)
	ReasonTLSClosed           = "tls-closed"            // closed before a ClientHello: a TCP probe, a port scan
	ReasonTLSHandshake        = "tls-handshake"         // failed otherwise
	ReasonTooManyConnections  = "too-many-connections"  // the identity holds the most connections allowed
	ReasonLimit               = "limit"                 // a request over the xDS server's limits
	ReasonMessageTooLarge     = "message-too-large"     // a message over grpc's receive limit (4 MiB)
	ReasonNoNodeID            = "no-node-id"
	ReasonInvalidNodeID       = "invalid-node-id"
	ReasonNodeIDChanged       = "node-id-changed"
	ReasonUnknownClass        = "unknown-class"
	ReasonNotReady            = "not-ready" // nothing served yet; the proxy retries
	ReasonIdentity            = "identity"  // the certificate is not the class's identity
)
