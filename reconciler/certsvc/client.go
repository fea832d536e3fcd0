package certsvc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/dynamicpb"
)

// CreateCertificate calls the service on cc with token as the caller's
// proof of identity. An empty token sends no authorization metadata at
// all (what a caller without one does), not an empty bearer.
func CreateCertificate(ctx context.Context, cc grpc.ClientConnInterface, token string, req Request) (Response, error) {
	out := dynamicpb.NewMessage(responseDesc)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	if err := cc.Invoke(ctx, CreateCertificateMethod, req.message(), out); err != nil {
		return Response{}, err
	}
	return responseOf(out), nil
}
