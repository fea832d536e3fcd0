package xds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SotW ADS streams are served by sotwADS, not by go-control-plane's
// ordered ADS loop (pkg/server/sotw/v3 processADS), which it mirrors
// request for request and response for response. The one difference is
// what an unchanged request costs. Every SotW ACK repeats the stream's
// whole subscription (an unscoped Envoy's EDS ACK names every cluster of
// the mesh), every stream of an unscoped mesh subscribes with the same
// list, and each request had its names decoded, a new map of them built
// (go-control-plane), hashed and matched against the class's view: at 500
// unscoped SotW streams, about a third of the server's CPU to full
// convergence, for lists the server had seen already.
// Here a large name list is decoded once into a nameSet (the list, its
// map and its hash) shared by every request that carries the same bytes:
// the ACKs of a stream, and the streams of an unscoped mesh, whose EDS
// lists are all one (sharedCodec.unmarshalSotw, names.go).

// adsServer is go-control-plane's server with SotW ADS streams served by
// sotwADS; delta streams stay with go-control-plane.
type adsServer struct {
	xdsserver.Server
	sotw *sotwADS
}

// StreamAggregatedResources serves one SotW ADS stream.
func (a adsServer) StreamAggregatedResources(st discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return a.sotw.serve(st)
}

// sotwADS serves SotW ADS streams in go-control-plane's ordered mode: one
// response channel per stream, responses sent in the order the cache
// produced them.
type sotwADS struct {
	ctx       context.Context // ends every stream at shutdown
	cache     cache.ConfigWatcher
	callbacks xdsserver.Callbacks
	s         *Server
	count     atomic.Int64 // stream ids
}

// sotwWatch is the open watch of one type on one stream.
type sotwWatch struct {
	cancel func()
	sub    *sotwSub
	nonce  string // of the last response sent; "" until one is
}

// serve runs one stream until the client ends it, it fails, or the server
// shuts down. What go-control-plane's process and processADS do, in the
// same order, is marked with their names where it is not plain.
func (a *sotwADS) serve(st discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	id := a.count.Add(1)
	node := &core.Node{} // only the first request is sure to carry it
	watches := map[string]*sotwWatch{}
	defer func() { // streamWrapper.shutdown
		for _, w := range watches {
			w.cancel()
		}
		a.callbacks.OnStreamClosed(id, node)
	}()

	// StreamHandler: requests are read by their own goroutine, which owns
	// the stream's last decoded names per type.
	reqCh := make(chan *sotwRecv)
	go func() {
		defer close(reqCh)
		for {
			in := &sotwRecv{req: &discovery.DiscoveryRequest{}}
			if err := st.RecvMsg(in); err != nil {
				return
			}
			select {
			case reqCh <- in:
			case <-st.Context().Done():
				return
			case <-a.ctx.Done():
				return
			}
		}
	}()

	if err := a.callbacks.OnStreamOpen(st.Context(), id, resource.AnyType); err != nil {
		return err
	}

	var nonce int64
	send := func(resp cache.Response) error { // streamWrapper.send
		if resp == nil {
			return errors.New("missing response")
		}
		out, err := resp.GetDiscoveryResponse()
		if err != nil {
			return err
		}
		nonce++
		out.Nonce = strconv.FormatInt(nonce, 10)
		typeURL := resp.GetRequest().GetTypeUrl()
		w, ok := watches[typeURL]
		if !ok {
			return fmt.Errorf("no current watch for %s", typeURL)
		}
		w.sub.returned = resp.GetReturnedResources()
		w.nonce = out.Nonce
		a.callbacks.OnStreamResponse(resp.GetContext(), id, resp.GetRequest(), out)
		return st.Send(out)
	}

	respChan := make(chan cache.Response, types.UnknownType)
	// sendAllExcept sends the waiting responses of every other type and
	// drops those of typeURL, whose watch a new request replaces.
	sendAllExcept := func(typeURL string) error {
		for {
			select {
			case res := <-respChan:
				if res.GetRequest().GetTypeUrl() != typeURL {
					if err := send(res); err != nil {
						return err
					}
				}
			default:
				return nil
			}
		}
	}

	for {
		select {
		case <-a.ctx.Done():
			return nil
		case res := <-respChan:
			if err := send(res); err != nil {
				return status.Error(codes.Unavailable, err.Error())
			}
		case in, ok := <-reqCh:
			if !ok {
				return nil
			}
			req := in.req
			if req.GetNode() != nil {
				node = req.GetNode()
			} else {
				req.Node = node
			}
			typeURL := req.GetTypeUrl()
			if typeURL == "" {
				return status.Errorf(codes.InvalidArgument, "type URL is required for ADS")
			}
			if err := a.callbacks.OnStreamRequest(id, req); err != nil {
				return err
			}
			var sub *sotwSub
			if w, ok := watches[typeURL]; ok {
				if w.nonce != "" && req.GetResponseNonce() != w.nonce {
					// A stale nonce: the protocol says to ignore the
					// request and wait for the next one.
					a.s.log.Debug("xds request with a stale nonce skipped", "type", typeURL, "stream", id)
					continue
				}
				// Closed first, so the cache no longer answers it while
				// the subscription changes.
				w.cancel()
				if err := sendAllExcept(typeURL); err != nil {
					return err
				}
				sub = w.sub
				sub.update(req.GetResourceNames(), in.set)
			} else {
				sub = newSotwSub(req.GetResourceNames(), in.set)
			}
			cancel, err := a.cache.CreateWatch(req, sub, respChan)
			if err != nil {
				return err
			}
			watches[typeURL] = &sotwWatch{cancel: cancel, sub: sub}
		}
	}
}

// sotwSub is a SotW subscription: go-control-plane's stream.Subscription
// (SetResourceSubscription) over a shared nameSet, which a request that
// repeats the names of an earlier one (of this stream or another) brings
// along ready-made.
type sotwSub struct {
	wildcard bool
	// legacy: the stream has named nothing yet, so an empty list still
	// means wildcard.
	legacy   bool
	set      *nameSet
	returned map[string]string
}

var _ cache.Subscription = (*sotwSub)(nil)

// newSotwSub is a stream's first subscription to a type. Legacy wildcard
// stays active for every type, as go-control-plane's default options have
// it.
func newSotwSub(names []string, set *nameSet) *sotwSub {
	s := &sotwSub{
		wildcard: len(names) == 0,
		legacy:   true,
		set:      noNames,
		returned: map[string]string{},
	}
	s.update(names, set)
	return s
}

// update sets the subscription from a request's names, as
// SetResourceSubscription does
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return).
// set, when not nil, is names as a nameSet.
func (s *sotwSub) update(names []string, set *nameSet) {
	if s.legacy {
		if len(names) == 0 {
			return // still wildcard
		}
		s.legacy = false
	}
	switch {
	case set != nil:
	case slices.Equal(names, s.set.names):
		set = s.set
	default:
		set = newNameSet(names)
	}
	s.set = set
	s.wildcard = set.explicit
	if !set.explicit {
		// Later subscriptions to these names get a response even if
		// the version has not changed.
		for name := range s.returned {
			if _, ok := set.subscribed[name]; !ok {
				delete(s.returned, name)
			}
		}
	}
}

// SubscribedResources returns the names subscribed to, without "*". The
// map is shared: nothing may change it.
func (s *sotwSub) SubscribedResources() map[string]struct{} { return s.set.subscribed }

// IsWildcard reports whether the subscription is wildcard.
func (s *sotwSub) IsWildcard() bool { return s.wildcard }

// ReturnedResources returns what the last response recorded.
func (s *sotwSub) ReturnedResources() map[string]string { return s.returned }

// namesHash returns nameSetHash of a subscription's names, computed once
// per nameSet.
func namesHash(sub cache.Subscription) uint64 {
	if s, ok := sub.(*sotwSub); ok {
		return s.set.hash
	}
	return nameSetHash(sub.SubscribedResources())
}
