package model

import "testing"

func TestParseRequest(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Request
		err  string
	}{
		{in: "GET http://reviews:9080/reviews/1", want: Request{Method: "GET", Scheme: "http", Host: "reviews", Port: 9080, Path: "/reviews/1"}},
		{in: "GET http://example.org", want: Request{Method: "GET", Scheme: "http", Host: "example.org", Port: 80, Path: "/"}},
		{in: "GET http://example.org?q=1", want: Request{Method: "GET", Scheme: "http", Host: "example.org", Port: 80, Path: "/?q=1"}},
		{in: "POST https://api.example.com/v1", want: Request{Method: "POST", Scheme: "https", Host: "api.example.com", Port: 443, Path: "/v1"}},
		{in: "POST grpc://greeter:50051/helloworld.Greeter/SayHello", want: Request{Method: "POST", Scheme: "grpc", Host: "greeter", Port: 50051, Path: "/helloworld.Greeter/SayHello"}},
		{in: "GET http://[fd00::1]:8080/", want: Request{Method: "GET", Scheme: "http", Host: "fd00::1", Port: 8080, Path: "/"}},
		{in: "tcp://db:5432", want: Request{Scheme: "tcp", Host: "db", Port: 5432}},
		{in: "tcp://db", err: `tcp request "tcp://db": needs a port`},
		{in: "http://reviews/", err: `want "METHOD URL" or "tcp://HOST:PORT" (got "http://reviews/")`},
		{in: "get http://reviews/", err: `method "get": want upper-case letters such as GET`},
		{in: "GET reviews:9080", err: `url "reviews:9080": want SCHEME://HOST[:PORT][/PATH]`},
		{in: "GET ftp://reviews/", err: `url "ftp://reviews/": scheme "ftp": want http, https or grpc`},
		{in: "GET http://reviews:0/", err: `url "http://reviews:0/": port "0": want 1 to 65535`},
		{in: "GET http:///x", err: `url "http:///x": no host`},
		{in: "GET http://a/b c", err: `url "http://a/b c": path must not contain spaces`},
	} {
		got, err := ParseRequest(c.in)
		switch {
		case c.err != "":
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
		case got != c.want:
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
	if a := (Request{Scheme: "http", Host: "reviews", Port: 9080}).Authority(); a != "reviews:9080" {
		t.Errorf("authority %q", a)
	}
	if a := (Request{Scheme: "https", Host: "example.org", Port: 443}).Authority(); a != "example.org" {
		t.Errorf("authority %q", a)
	}
}
