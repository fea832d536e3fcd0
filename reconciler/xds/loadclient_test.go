package xds

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The load benchmark runs its ADS clients in a child process (this test
// binary, switched by XDS_LOAD_CLIENT_ADDR), so the server's memory and CPU
// are measured alone. The clients skim responses instead of decoding them:
// they count resources and read the nonce, as cheaply as a client can.
func TestMain(m *testing.M) {
	if addr := os.Getenv("XDS_LOAD_CLIENT_ADDR"); addr != "" {
		if err := runLoadClient(addr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// skim is a SotW or delta response reduced to what a load client needs;
// both messages number these fields alike.
type skim struct {
	typeURL, version, nonce string
	n, size                 int
}

// skimCodec sends requests as protobuf and skims responses.
type skimCodec struct{}

func (skimCodec) Name() string { return "proto" }

func (skimCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (skimCodec) Unmarshal(data mem.BufferSlice, v any) error {
	s := v.(*skim)
	b := data.Materialize()
	s.size = len(b)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			switch num {
			case 1:
				s.version = string(v)
			case 2:
				s.n++
			case 4:
				s.typeURL = string(v)
			case 5:
				s.nonce = string(v)
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

func runLoadClient(addr string) error {
	streams, _ := strconv.Atoi(os.Getenv("XDS_LOAD_CLIENT_STREAMS"))
	services, _ := strconv.Atoi(os.Getenv("XDS_LOAD_CLIENT_SERVICES"))
	nconns, _ := strconv.Atoi(os.Getenv("XDS_LOAD_CLIENT_CONNS"))
	delta := os.Getenv("XDS_LOAD_CLIENT_DELTA") == "1"
	if streams <= 0 || services <= 0 || nconns <= 0 {
		return errors.New("load client: streams, services and conns must be set")
	}
	var conns []*grpc.ClientConn
	for range nconns {
		// Envoy's default HTTP/2 windows are 256 MiB; grpc-go's 64 KiB would
		// measure the client's flow control, not the server.
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(16<<20), grpc.WithInitialConnWindowSize(256<<20),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(skimCodec{}), grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			return fmt.Errorf("load client: %w", err)
		}
		conns = append(conns, conn)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	report := func(i int, s *skim) {
		mu.Lock()
		fmt.Fprintf(out, "%d %d %d %d\n", i, s.n, s.size, time.Now().UnixNano())
		out.Flush()
		mu.Unlock()
	}
	method := "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
	if delta {
		method = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
	}
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := &core.Node{Id: "sidecar/default/" + svcName(i%services) + "/v1/pod-" + strconv.Itoa(i)}
			st, err := conns[i%nconns].NewStream(context.Background(),
				&grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			for k, t := range []string{resource.ClusterType, resource.EndpointType} {
				var req proto.Message = &discovery.DiscoveryRequest{TypeUrl: t}
				if delta {
					req = &discovery.DeltaDiscoveryRequest{TypeUrl: t}
				}
				if k == 0 {
					if delta {
						req.(*discovery.DeltaDiscoveryRequest).Node = node
					} else {
						req.(*discovery.DiscoveryRequest).Node = node
					}
				}
				st.SendMsg(req)
			}
			for {
				var s skim
				if err := st.RecvMsg(&s); err != nil {
					return
				}
				report(i, &s)
				var ack proto.Message = &discovery.DiscoveryRequest{TypeUrl: s.typeURL, VersionInfo: s.version, ResponseNonce: s.nonce}
				if delta {
					ack = &discovery.DeltaDiscoveryRequest{TypeUrl: s.typeURL, ResponseNonce: s.nonce}
				}
				st.SendMsg(ack)
			}
		}()
	}
	wg.Wait()
	return nil
}
