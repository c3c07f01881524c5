package dockertest

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
)

// Forward relays a connection both ways, a half-close included.
func TestForwardRelaysToTarget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo " + line))
			}()
		}
	}()
	ip := "127.0.0.1"
	addr := Forward(t, ip, l.Addr().String())
	if !strings.HasPrefix(addr, ip+":") {
		t.Fatalf("Forward listens on %s, want %s", addr, ip)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "echo hello\n" {
		t.Fatalf("through the forward: %q, %v", got, err)
	}
}

// The default bridge's gateway is an address of this host, where a server
// the test runs can listen for containers.
func TestBridgeGatewayIsAHostAddress(t *testing.T) {
	cli := Client(t)
	gw, err := BridgeGateway(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatalf("the bridge gateway %s is not an address of this host: %v", gw, err)
	}
	l.Close()
}
