package testenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
)

// ClickHouse before 19.x answers the native-protocol query
// "INSERT INTO t FORMAT Native" with an empty header block (it expects the
// client to already know the columns), and clickhouse-go/v2's PrepareBatch
// always sends that form, so every Append fails with "expected 0 arguments".
// "INSERT INTO t VALUES" makes the server send the table's header, after which
// the client sends native blocks exactly as before; that is what
// clickhouse-client does on every version.
//
// legacyInsertConn rewrites the one outgoing Query packet text accordingly.
// clickhouse-go writes a whole Query packet with one Write (connect.flush),
// and query text is a uvarint-length-prefixed string, so the rewrite is
// local: find " FORMAT Native" that ends a length-prefixed string starting
// with INSERT, shorten the string, re-encode the length. Servers that speak
// the modern form are left alone (rewrite only when the handshake's revision
// is below 54429, i.e. before ClickHouse 19.x... as observed: 18.16 is 54412).

const (
	formatNativeSuffix     = " FORMAT Native"
	legacyRevisionBoundary = 54429 // DBMS_MIN_REVISION_WITH_SETTINGS_SERIALIZED_AS_STRINGS
)

// LegacyInsertDialer returns a clickhouse.Options.DialContext that makes
// PrepareBatch work on ClickHouse 18.x; on newer servers it is a plain dialer.
func LegacyInsertDialer() func(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &legacyInsertConn{Conn: c}, nil
	}
}

type legacyInsertConn struct {
	net.Conn
	once    sync.Once
	hello   []byte // first bytes read, until the server hello is parsed
	mu      sync.Mutex
	decided bool
	rewrite bool
}

func (c *legacyInsertConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if !c.decided && n > 0 {
		c.hello = append(c.hello, p[:n]...)
		if rev, ok := parseServerHelloRevision(c.hello); ok {
			c.decided, c.rewrite, c.hello = true, rev < legacyRevisionBoundary, nil
		} else if len(c.hello) > 4096 {
			c.decided, c.hello = true, nil
		}
	}
	c.mu.Unlock()
	return n, err
}

func (c *legacyInsertConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	rewrite := c.rewrite
	c.mu.Unlock()
	if rewrite {
		if q, ok := rewriteInsertFormatNative(p); ok {
			if _, err := c.Conn.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// parseServerHelloRevision reads packet 0 (Hello): name string, major, minor,
// revision uvarints.
func parseServerHelloRevision(b []byte) (uint64, bool) {
	if len(b) == 0 || b[0] != 0 {
		return 0, len(b) > 0 // not a hello (exception): give up, no rewrite
	}
	b = b[1:]
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return 0, false
	}
	b = b[n+int(l):]
	for i := 0; i < 2; i++ { // major, minor
		if _, n = binary.Uvarint(b); n <= 0 {
			return 0, false
		}
		b = b[n:]
	}
	rev, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, false
	}
	return rev, true
}

func rewriteInsertFormatNative(p []byte) ([]byte, bool) {
	i := bytes.Index(p, []byte(formatNativeSuffix))
	if i < 0 {
		return nil, false
	}
	end := i + len(formatNativeSuffix)
	// Find the uvarint length prefix of the string that ends at end.
	for j := i - 1; j >= 0 && i-j < 1<<20; j-- {
		l, n := binary.Uvarint(p[j:])
		if n <= 0 || uint64(end-(j+n)) != l {
			continue
		}
		start := j + n
		if !bytes.HasPrefix(bytes.ToUpper(p[start:min(start+6, end)]), []byte("INSERT")) {
			continue
		}
		q := append([]byte{}, p[start:i]...)
		q = append(q, " VALUES"...)
		out := make([]byte, 0, len(p))
		out = append(out, p[:j]...)
		out = binary.AppendUvarint(out, uint64(len(q)))
		out = append(out, q...)
		out = append(out, p[end:]...)
		return out, true
	}
	return nil, false
}
