package render

import (
	"math"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Small proto helpers shared by the feature files.

// validator is what protoc-gen-validate generates on every Envoy message.
type validator interface{ ValidateAll() error }

// pack wraps msg in an Any for a typed_config. Generated ValidateAll does
// not look inside an Any, so the inner message is validated here, where the
// model path that produced it is known.
func (b *builder) pack(path string, msg proto.Message) *anypb.Any {
	if v, ok := msg.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			b.errorf(CodeInvalidResource, path, "invalid %s: %v", msg.ProtoReflect().Descriptor().FullName(), err)
		}
	}
	// Marshal deterministically (anypb.New does not), so equal content gives
	// equal bytes and equal versions.
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		b.errorf(CodeInvalidResource, path, "pack %s: %v", msg.ProtoReflect().Descriptor().FullName(), err)
		return nil
	}
	a := &anypb.Any{TypeUrl: "type.googleapis.com/" + string(msg.ProtoReflect().Descriptor().FullName()), Value: raw}
	// Remember the message the bytes came from, so the validation pass
	// reads exactly this content without unmarshalling it again.
	b.packed[a] = msg
	return a
}

// dur converts a model duration.
func dur(d model.Duration) *durationpb.Duration {
	s, n := d.Seconds()
	return &durationpb.Duration{Seconds: s, Nanos: n}
}

// u32 wraps a positive int; 0 and negatives mean "unset" in the model. A
// value too large for uint32 is an error at path, never truncated (the
// schema bounds these fields; this catches models built elsewhere).
func (b *builder) u32(path string, n int) *wrapperspb.UInt32Value {
	if n <= 0 {
		return nil
	}
	if uint64(n) > math.MaxUint32 {
		// Once per field, not once per cluster flavour built from it.
		if k := "u32\x00" + path; !b.reported[k] {
			b.reported[k] = true
			b.errorf(CodeInvalidValue, path, "%d does not fit Envoy's uint32 field (at most %d)", n, uint32(math.MaxUint32))
		}
		return nil
	}
	return wrapperspb.UInt32(uint32(n))
}

// adsSource is the config source every dynamic reference uses: the same ADS
// stream the proxy is on. grpc-go accepts only ads (or self) here. It is one
// shared, never-modified message: sub-messages may be shared between
// resources because rendered protos are immutable, and at 10,000 services
// this saves hundreds of thousands of allocations.
func adsSource() *corev3.ConfigSource { return sharedADS }

var sharedADS = &corev3.ConfigSource{
	ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	ResourceApiVersion:    corev3.ApiVersion_V3,
}

// socketAddr is a TCP socket address.
func socketAddr(addr string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       addr,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// millionths turns a percentage (0–100, fractions allowed) into a
// FractionalPercent over a million, so 0.5% is exact.
func millionths(percent float64) *typev3.FractionalPercent {
	n := percent * 10000
	if n < 0 {
		n = 0
	}
	if n > 1e6 {
		n = 1e6
	}
	return &typev3.FractionalPercent{
		Numerator:   uint32(n + 0.5),
		Denominator: typev3.FractionalPercent_MILLION,
	}
}
