package xds

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// DefaultMaxConnsPerIdentity bounds the open connections of one client
// identity (one SPIFFE id): a stolen or misbehaving workload certificate
// cannot hold the server's file descriptors and memory by opening
// connections without end. Replicas of a service share its identity, and
// an Envoy or grpc-go client holds one ADS connection, so the default
// leaves room for a few thousand replicas of one service account.
const DefaultMaxConnsPerIdentity = 4096

// connCounter counts open connections per identity.
type connCounter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newConnCounter(max int) *connCounter {
	return &connCounter{max: max, n: map[string]int{}}
}

// acquire takes one connection of id, or reports that id has max already.
func (c *connCounter) acquire(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[id] >= c.max {
		return false
	}
	c.n[id]++
	return true
}

func (c *connCounter) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[id]--; c.n[id] <= 0 {
		delete(c.n, id)
	}
}

// open is how many connections id holds now.
func (c *connCounter) open(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// admitConn counts a connection whose handshake succeeded. Over the identity's
// limit the connection is closed and refused like a failed handshake:
// logged, counted and listed with reason too-many-connections.
func (s *Server) admitConn(conn, raw net.Conn, id string) (net.Conn, error) {
	if !s.conns.acquire(id) {
		err := fmt.Errorf("more than %d open connections with identity %s", s.conns.max, id)
		// Recorded before the close, so whoever sees the connection end
		// also finds it listed.
		s.refused(apiv1.Rejection{Peer: raw.RemoteAddr().String(), Identity: id, Code: codes.ResourceExhausted.String(),
			Reason: apiv1.ReasonTooManyConnections, Error: err.Error(), At: time.Now()})
		conn.Close()
		return nil, err
	}
	return &countedConn{Conn: conn, release: func() { s.conns.release(id) }}, nil
}

// countedConn releases its identity's count once, when grpc closes it.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// SyscallConn passes the socket through, as grpc's own TLS connection
// does (grpc sets TCP_USER_TIMEOUT through it).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("the connection has no socket")
}
