package certsvc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/dynamicpb"
)

// CreateCertificate calls the service on cc with token as the caller's
// proof of identity.
func CreateCertificate(ctx context.Context, cc grpc.ClientConnInterface, token string, req Request) (Response, error) {
	out := dynamicpb.NewMessage(responseDesc)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	if err := cc.Invoke(ctx, CreateCertificateMethod, req.message(), out); err != nil {
		return Response{}, err
	}
	return responseOf(out), nil
}

// CreateCertificateNoToken calls the service with no authorization
// metadata (tests of the refusal).
func CreateCertificateNoToken(ctx context.Context, cc grpc.ClientConnInterface, req Request) (Response, error) {
	out := dynamicpb.NewMessage(responseDesc)
	if err := cc.Invoke(ctx, CreateCertificateMethod, req.message(), out); err != nil {
		return Response{}, err
	}
	return responseOf(out), nil
}
