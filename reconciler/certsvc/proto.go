package certsvc

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The wire shape is Istio's istio.v1.auth.IstioCertificateService
// (security/proto/istioca.proto), so an Istio-speaking client works
// unchanged:
//
//	message IstioCertificateRequest {
//	  string csr = 1;                      // PEM
//	  int64 validity_duration = 2;         // seconds
//	  google.protobuf.Struct metadata = 3; // ignored here
//	}
//	message IstioCertificateResponse { repeated string cert_chain = 1; }
//	service IstioCertificateService {
//	  rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse);
//	}
//
// No protoc runs in this build, so the descriptors are built here and the
// messages are dynamicpb; Request and Response are the typed views.
const (
	// ServiceName is the gRPC service's full name.
	ServiceName = "istio.v1.auth.IstioCertificateService"
	// CreateCertificateMethod is the full method name of the one RPC.
	CreateCertificateMethod = "/" + ServiceName + "/CreateCertificate"
)

var (
	requestDesc, responseDesc = descriptors()
)

func descriptors() (req, resp protoreflect.MessageDescriptor) {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("gitmesh/certsvc/istioca.proto"),
		Package: proto.String("istio.v1.auth"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("IstioCertificateRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("csr"), JsonName: proto.String("csr"), Number: proto.Int32(1), Label: opt, Type: str},
				{Name: proto.String("validity_duration"), JsonName: proto.String("validityDuration"), Number: proto.Int32(2), Label: opt, Type: i64},
			}},
			{Name: proto.String("IstioCertificateResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("cert_chain"), JsonName: proto.String("certChain"), Number: proto.Int32(1), Label: rep, Type: str},
			}},
		},
	}
	// A private file set: the descriptors never enter the global registry,
	// where they could clash with an Istio library linked into a test.
	f, err := protodesc.NewFile(fd, nil)
	if err != nil {
		panic(fmt.Sprintf("certsvc: descriptors: %v", err))
	}
	return f.Messages().ByName("IstioCertificateRequest"), f.Messages().ByName("IstioCertificateResponse")
}

// Request is an IstioCertificateRequest.
type Request struct {
	// CSRPEM is a PEM CERTIFICATE REQUEST; only its public key is used.
	CSRPEM string
	// ValiditySeconds is the lifetime asked for; 0 means the server's
	// default.
	ValiditySeconds int64
}

func (r Request) message() *dynamicpb.Message {
	m := dynamicpb.NewMessage(requestDesc)
	m.Set(requestDesc.Fields().ByNumber(1), protoreflect.ValueOfString(r.CSRPEM))
	m.Set(requestDesc.Fields().ByNumber(2), protoreflect.ValueOfInt64(r.ValiditySeconds))
	return m
}

func requestOf(m *dynamicpb.Message) Request {
	return Request{
		CSRPEM:          m.Get(requestDesc.Fields().ByNumber(1)).String(),
		ValiditySeconds: m.Get(requestDesc.Fields().ByNumber(2)).Int(),
	}
}

// Response is an IstioCertificateResponse: the issued leaf first, then any
// intermediates, then (last) the trust bundle, the way Istio orders it.
// Here the last element holds every root of the trust bundle (two during a
// root rotation) as one PEM string.
type Response struct {
	CertChain []string
}

func (r Response) message() *dynamicpb.Message {
	m := dynamicpb.NewMessage(responseDesc)
	l := m.Mutable(responseDesc.Fields().ByNumber(1)).List()
	for _, c := range r.CertChain {
		l.Append(protoreflect.ValueOfString(c))
	}
	return m
}

func responseOf(m *dynamicpb.Message) Response {
	l := m.Get(responseDesc.Fields().ByNumber(1)).List()
	out := Response{CertChain: make([]string, l.Len())}
	for i := range l.Len() {
		out.CertChain[i] = l.Get(i).String()
	}
	return out
}
