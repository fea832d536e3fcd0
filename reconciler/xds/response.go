package xds

import (
	"context"
	"errors"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// revisionKey carries the revision a SotW response was built from to the
// OnStreamResponse callback, which only sees the response's context.
type revisionKey struct{}

// sotwResponse is a ready-made SotW response. Its Resources slice points at
// Anys shared by every stream of every class; only the small envelope is per
// stream, because go-control-plane writes the nonce into it.
type sotwResponse struct {
	req      *discovery.DiscoveryRequest
	out      *discovery.DiscoveryResponse
	returned map[string]string
	ctx      context.Context
}

var _ cache.Response = (*sotwResponse)(nil)

func newSotwResponse(req *discovery.DiscoveryRequest, version string, anys []*anypb.Any, returned map[string]string, revision string) *sotwResponse {
	return &sotwResponse{
		req:      req,
		out:      &discovery.DiscoveryResponse{VersionInfo: version, Resources: anys, TypeUrl: req.GetTypeUrl()},
		returned: returned,
		ctx:      context.WithValue(context.Background(), revisionKey{}, revision),
	}
}

// GetDiscoveryResponse returns the prepared response; nothing is marshalled.
func (r *sotwResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return r.out, nil
}

// GetRequest returns the request the watch answered.
func (r *sotwResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }

// GetVersion returns the response's version_info.
func (r *sotwResponse) GetVersion() (string, error) { return r.out.GetVersionInfo(), nil }

// GetResponseVersion returns the response's version_info.
func (r *sotwResponse) GetResponseVersion() string { return r.out.GetVersionInfo() }

// GetReturnedResources returns what the stream will know after this response.
func (r *sotwResponse) GetReturnedResources() map[string]string { return r.returned }

// GetContext returns a context carrying the revision.
func (r *sotwResponse) GetContext() context.Context { return r.ctx }

// deltaResponse is a ready-made delta response of shared resource wrappers.
type deltaResponse struct {
	req      *discovery.DeltaDiscoveryRequest
	out      *discovery.DeltaDiscoveryResponse
	returned map[string]string
}

var _ cache.DeltaResponse = (*deltaResponse)(nil)

// GetDeltaDiscoveryResponse returns the prepared response.
func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return r.out, nil
}

// GetDeltaRequest returns the request the watch answered.
func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }

// GetSystemVersion returns the revision the response was built from.
func (r *deltaResponse) GetSystemVersion() (string, error) { return r.out.GetSystemVersionInfo(), nil }

// GetResponseVersion returns the revision the response was built from.
func (r *deltaResponse) GetResponseVersion() string { return r.out.GetSystemVersionInfo() }

// GetNextVersionMap returns the stream's resource versions after this response.
func (r *deltaResponse) GetNextVersionMap() map[string]string { return r.returned }

// GetReturnedResources returns the stream's resource versions after this response.
func (r *deltaResponse) GetReturnedResources() map[string]string { return r.returned }

// GetContext returns a background context; delta callbacks do not receive it.
func (r *deltaResponse) GetContext() context.Context { return context.Background() }

// errFull reports a response channel with no room, which go-control-plane
// sizes for one pending response per type: a client watching more distinct
// types than that cannot be answered without blocking the stream's own loop.
var errFull = errors.New("response channel full")
