// Package hello is the Greeter API of the grpc-canary example, written by
// hand: a grpc.ServiceDesc over the well-known wrapperspb.StringValue
// message, so the example (and gitmesh's conformance test, which reuses it)
// needs no protoc step and no generated code.
//
// SayHello answers with the version of the server that handled the call,
// which is what lets a client count how traffic is split. SayGoodbye exists
// so that authorization rules have a second method to allow or deny.
package hello

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the fully qualified gRPC service name; RBAC paths are
// "/" + ServiceName + "/" + method.
const ServiceName = "gitmesh.demo.Greeter"

// Full method paths, as authorization rules and RBAC see them.
const (
	SayHelloPath   = "/" + ServiceName + "/SayHello"
	SayGoodbyePath = "/" + ServiceName + "/SayGoodbye"
)

// Server is what a Greeter implementation provides.
type Server interface {
	// SayHello greets name and reports the server's version.
	SayHello(ctx context.Context, name string) (string, error)
	// SayGoodbye is a second method for authorization rules to tell apart.
	SayGoodbye(ctx context.Context, name string) (string, error)
}

// Version is a Server that answers every call with its own version string
// ("v1", "v2"), so the caller learns which version served it.
type Version string

// SayHello returns the version.
func (v Version) SayHello(context.Context, string) (string, error) { return string(v), nil }

// SayGoodbye returns the version.
func (v Version) SayGoodbye(context.Context, string) (string, error) { return string(v), nil }

// ServiceDesc describes the Greeter service to grpc-go, as protoc-gen-go-grpc
// would have generated it.
var ServiceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "SayHello", Handler: unary(SayHelloPath, Server.SayHello)},
		{MethodName: "SayGoodbye", Handler: unary(SayGoodbyePath, Server.SayGoodbye)},
	},
	Metadata: "hello.go",
}

// Register adds the Greeter service to a gRPC server (plain or xDS-enabled).
func Register(r grpc.ServiceRegistrar, srv Server) { r.RegisterService(&ServiceDesc, srv) }

// unary adapts one Server method to grpc-go's method handler signature,
// running interceptors the way generated code does.
func unary(fullMethod string, call func(Server, context.Context, string) (string, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		handle := func(ctx context.Context, req any) (any, error) {
			out, err := call(srv.(Server), ctx, req.(*wrapperspb.StringValue).GetValue())
			if err != nil {
				return nil, err
			}
			return wrapperspb.String(out), nil
		}
		if interceptor == nil {
			return handle(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, handle)
	}
}

// Client calls a Greeter over any connection, including xds:/// channels.
type Client struct{ cc grpc.ClientConnInterface }

// NewClient returns a Client using cc.
func NewClient(cc grpc.ClientConnInterface) *Client { return &Client{cc: cc} }

// SayHello greets name and returns the version that answered.
func (c *Client) SayHello(ctx context.Context, name string, opts ...grpc.CallOption) (string, error) {
	return c.call(ctx, SayHelloPath, name, opts)
}

// SayGoodbye calls the second method and returns the version that answered.
func (c *Client) SayGoodbye(ctx context.Context, name string, opts ...grpc.CallOption) (string, error) {
	return c.call(ctx, SayGoodbyePath, name, opts)
}

func (c *Client) call(ctx context.Context, method, name string, opts []grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	// StaticMethodCallOption lets grpc-go's client metrics name the method
	// (generated stubs pass it too); without it they say "other".
	opts = append([]grpc.CallOption{grpc.StaticMethodCallOption{}}, opts...)
	if err := c.cc.Invoke(ctx, method, wrapperspb.String(name), out, opts...); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}
