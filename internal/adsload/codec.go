package adsload

import (
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// rawResponse is a SotW or delta response cut into the pieces a follower
// needs, pointing into the received buffer instead of decoding every
// resource: most of what a stream receives was already decoded by another
// stream, and the content cache recognises it by its bytes.
type rawResponse struct {
	typeURL, version, nonce string
	resources               []rawResource
	removed                 []string
	size                    int
	// buf holds the received bytes the resources point into, until
	// release.
	buf mem.Buffer
}

// release returns the received bytes to grpc's buffer pool: once a
// response is handled nothing points into them (entries copy what they
// keep). Envoy parses into buffers it reuses and frees as it goes; a Go
// client that allocated a fresh copy of every response (450 MB for one
// edit of an unscoped mesh of 1,000 services, at 1,000 streams) made its
// garbage collector mark its whole heap during the push, on the cores the
// control plane under test shares: that measured the client, not gitmesh.
func (r *rawResponse) release() {
	if r.buf != nil {
		r.buf.Free()
		r.buf = nil
	}
}

// rawResource is one resource: the Any's value, and for delta the name and
// version the server put next to it. All three point into the received
// buffer; the entry cache looks them up without converting to strings.
type rawResource struct {
	name, version, value []byte
}

// rawCodec marshals requests as protobuf and cuts responses into a
// rawResponse. SotW and delta responses number the fields used here alike,
// except resources (an Any or a Resource wrapping one), told apart by delta.
type rawCodec struct{ delta bool }

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r := v.(*rawResponse)
	r.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
	b := r.buf.ReadOnlyData()
	r.size = len(b)
	n := 0
	_ = eachBytes(b, func(num protowire.Number, _ []byte) error {
		if num == 2 {
			n++
		}
		return nil
	})
	r.resources = make([]rawResource, 0, n) // one allocation, not log2(9,000)
	return eachBytes(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			r.version = string(v)
		case 2:
			res, err := c.resource(v)
			if err != nil {
				return err
			}
			r.resources = append(r.resources, res)
		case 4:
			r.typeURL = string(v)
		case 5:
			r.nonce = string(v)
		case 6:
			if c.delta {
				r.removed = append(r.removed, string(v))
			}
		}
		return nil
	})
}

// resource cuts a SotW Any (type_url 1, value 2) or a delta Resource
// (version 1, resource 2, name 3).
func (c rawCodec) resource(b []byte) (rawResource, error) {
	var res rawResource
	if !c.delta {
		err := eachBytes(b, func(num protowire.Number, v []byte) error {
			if num == 2 {
				res.value = v
			}
			return nil
		})
		return res, err
	}
	err := eachBytes(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			res.version = v
		case 2:
			return eachBytes(v, func(num protowire.Number, v []byte) error {
				if num == 2 {
					res.value = v
				}
				return nil
			})
		case 3:
			res.name = v
		}
		return nil
	})
	return res, err
}

// firstString returns field 1 of a message: the name of a listener,
// cluster or route configuration, the cluster_name of an assignment.
func firstString(b []byte) string {
	var name string
	_ = eachBytes(b, func(num protowire.Number, v []byte) error {
		if num == 1 && name == "" {
			name = string(v)
		}
		return nil
	})
	return name
}

// eachBytes calls f for every length-delimited field of b, skipping others.
func eachBytes(b []byte, f func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("decode response: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("decode response: %w", protowire.ParseError(m))
			}
			if err := f(num, v); err != nil {
				return err
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("decode response: %w", protowire.ParseError(m))
		}
		b = b[m:]
	}
	return nil
}
