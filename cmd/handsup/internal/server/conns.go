package server

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// connLimit is the API's listener with a cap on open connections: past
// it, a new connection is answered 503 at once and closed, so that
// clients that hold connections cannot lock the API out of descriptors.
type connLimit struct {
	net.Listener
	max       int64
	open      atomic.Int64
	refused   atomic.Uint64
	answering atomic.Int64 // refusals being answered
}

// refusal is the whole answer to a connection past the cap.
var refusal = func() string {
	body := `{"error": "too many connections to the API"}` + "\n"
	return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused.Add(1)
		if l.answering.Add(1) > maxAnswering {
			l.answering.Add(-1)
			_ = c.Close() // a flood: no answer
			continue
		}
		go l.refuse(c) // the answer must not hold up Accept
	}
}

// maxAnswering bounds the refused connections being answered at once.
const maxAnswering = 64

// refuse answers a connection past the cap with 503 once its request
// has come (or a second has passed: clients read an answer only after
// they sent their request) and closes it.
func (l *connLimit) refuse(c net.Conn) {
	defer l.answering.Add(-1)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var buf [4096]byte
	_, _ = c.Read(buf[:])
	_, _ = c.Write([]byte(refusal))
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		_, _ = tc.Read(buf[:]) // let the client read the answer before the close resets it
	}
}

// limitedConn gives its place back when closed.
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// writeDeadline bounds the time to write each answer, Config.WriteTimeout
// from the request's start, so that a client that does not read cannot
// hold its connection; event streams set their own deadline per write,
// and profiles (pprof, which may run 30 s) have none.
func (s *Server) writeDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		}
		h.ServeHTTP(w, r)
	})
}
