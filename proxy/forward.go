package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// exchange is everything one proxied request needs beyond what the server
// and the transport allocate: the outgoing request, its URL, the response
// recorder and the values of the headers the proxy sets, in one
// allocation.
type exchange struct {
	out  http.Request
	url  url.URL
	rec  responseRecorder
	vals [5]string // X-Forwarded-For, -Host, -Proto, User-Agent, Te
}

// forward proxies r to one of rt's backends and records the answer. It does
// what httputil.ReverseProxy with a Rewrite does, without its per-request
// clones, closures and trace context on the common path:
//   - the outgoing request carries r's header without hop-by-hop fields
//     (RFC 7230 section 6.1: the fixed list and every field the Connection
//     header names), with X-Forwarded-* set (see outboundHeader), r's Host,
//     and a query without parameters a backend could parse differently;
//   - "Te: trailers" is passed on when the client accepts trailers, and
//     response trailers come back, announced or not;
//   - an upgrade (websocket) is passed on, its connection tracked until
//     its backend leaves the table;
//   - server-sent events and bodies of unknown length are flushed after
//     every read;
//   - a failure to reach the backend is a 502 or 504 page, a response cut
//     short aborts the client's connection (http.ErrAbortHandler), and a
//     client that went away before an answer counts as 499.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, rt *Route, st *projectStats, start time.Time) {
	b := rt.Pick()
	ex := &exchange{}
	rec := &ex.rec
	*rec = responseRecorder{ResponseWriter: w, h: h, project: rt.Project, backend: b.Addr}
	defer func() {
		// Runs on http.ErrAbortHandler panics too (upstream broke off
		// mid-response); the panic goes on to the server.
		status := rec.status
		if status == 0 {
			status = 499 // client went away before an answer
		}
		h.record(st, status, start)
	}()

	upgrade := upgradeType(r.Header)
	if !isPrintASCII(upgrade) {
		h.proxyError(rec, r, fmt.Errorf("client tried to switch to invalid protocol %q", upgrade))
		return
	}
	out := &ex.out
	*out = *r // shares r's context
	ex.url = *r.URL
	ex.url.Scheme, ex.url.Host = "http", b.Addr
	ex.url.RawQuery = cleanQueryParams(ex.url.RawQuery)
	out.URL = &ex.url
	out.Header = h.outboundHeader(r, upgrade, &ex.vals)
	out.RequestURI = "" // a client request
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil // nothing to send; lets a transport retry
	}
	if out.Body != nil {
		// The transport closes the body it was given, also when it fails to
		// connect; the client's body must stay readable by the server until
		// the handler returns (100-continue), and nothing may read it after.
		body := &noopCloseReader{rc: out.Body}
		out.Body = body
		defer body.Close()
	}

	res, err := h.roundTrip(rec, out)
	if err != nil {
		h.proxyError(rec, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		h.switchProtocols(rec, out, res, upgrade)
		return
	}

	removeHopByHopHeaders(res.Header)
	dropReservedCookies(res.Header)
	dst := rec.Header()
	for k, vv := range res.Header {
		if len(dst[k]) == 0 {
			dst[k] = vv // res is ours: its slices can be handed on
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
	// A transport never shows the Trailer header itself: announce what it
	// parsed from it.
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	rec.WriteHeader(res.StatusCode)

	var flush func() error
	if streamed(res) {
		flush = http.NewResponseController(rec).Flush
		// The head goes out now, before the first event.
		flush()
	}
	if err := copyBody(rec, res.Body, flush); err != nil {
		res.Body.Close()
		var re readError
		if errors.As(err, &re) && !errors.Is(err, context.Canceled) && r.Context().Err() == nil {
			h.log.Warn("backend broke off its response", "host", r.Host, "backend", b.Addr, "err", re.error)
		}
		if r.Context().Value(http.ServerContextKey) != nil {
			// The server closes the client's connection without a clean
			// end of the body, so the client sees the response is cut.
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // fills res.Trailer
	dropReservedCookies(res.Trailer)

	if len(res.Trailer) > 0 {
		// Chunked from here on: the trailers need it, and the server must
		// not compute a length for a short body.
		http.NewResponseController(rec).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// roundTrip sends out to the backend. Requests the transport hands to
// http.Transport (bodies, upgrades) pass 1xx answers such as 103 Early
// Hints on to the client; the synchronous path skips them.
func (h *Handler) roundTrip(rec *responseRecorder, out *http.Request) (*http.Response, error) {
	if fastPath(out) {
		return h.transport.RoundTrip(out)
	}
	var (
		mu   sync.Mutex
		done bool
	)
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			if done {
				return nil
			}
			dst := rec.Header()
			own := dst.Clone() // what the handler set (the gate's X-Robots-Tag)
			for k, vv := range header {
				if k != "Set-Cookie" {
					dst[k] = append(dst[k], vv...)
				}
			}
			rec.WriteHeader(code)
			clear(dst) // WriteHeader keeps a 1xx's fields
			for k, vv := range own {
				dst[k] = vv
			}
			return nil
		},
	}
	traced := out.WithContext(httptrace.WithClientTrace(out.Context(), trace))
	res, err := h.transport.RoundTrip(traced)
	mu.Lock()
	done = true
	mu.Unlock()
	return res, err
}

// outboundHeader returns the header of the request to the backend, with
// vals as the storage of the values it sets. Its other values are r's own
// slices, shared, never modified.
//
// From a peer that is not a trusted proxy, the client's Forwarded and
// X-Forwarded-* fields are dropped and replaced by X-Forwarded-For (the
// peer), X-Forwarded-Host (r's Host) and X-Forwarded-Proto. From a trusted
// proxy, Forwarded, X-Forwarded-Host and -Proto are kept and the peer is
// appended to X-Forwarded-For.
func (h *Handler) outboundHeader(r *http.Request, upgrade string, vals *[5]string) http.Header {
	in := r.Header
	listed := connectionListed(in["Connection"])
	out := make(http.Header, len(in)+4)
	for k, vv := range in {
		if isHopHeader(k) || isForwardingHeader(k) || listed.has(k) {
			continue
		}
		out[k] = vv
	}
	if upgrade != "" {
		out["Connection"] = []string{"Upgrade"}
		out["Upgrade"] = []string{upgrade}
	}
	set := func(i int, k, v string) {
		vals[i] = v
		out[k] = vals[i : i+1 : i+1]
	}
	if headerValuesContainToken(in["Te"], "trailers") {
		set(4, "Te", "trailers")
	}
	trusted := h.trustedPeer(r.RemoteAddr)
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := in["X-Forwarded-For"]; trusted && len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		set(0, "X-Forwarded-For", clientIP)
	}
	host, proto := r.Host, "http"
	if r.TLS != nil {
		proto = "https"
	}
	if trusted {
		if v := in.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := in.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := in["Forwarded"]; len(v) > 0 {
			out["Forwarded"] = v
		}
	}
	set(1, "X-Forwarded-Host", host)
	set(2, "X-Forwarded-Proto", proto)
	if _, ok := out["User-Agent"]; !ok {
		// Without one, Go's client would send its own.
		set(3, "User-Agent", "")
	}
	return out
}

// isHopHeader reports whether k (canonical) is one of the hop-by-hop
// fields of RFC 7230 section 6.1, or one that RFC 2616 section 13.5.1
// listed and clients still send.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// isForwardingHeader reports whether k (canonical) is one of the fields a
// proxy sets about the client.
func isForwardingHeader(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// listedFields are the fields a Connection header names, canonical.
type listedFields []string

// connectionListed returns the field names the Connection header values
// list (RFC 7230 section 6.1); nil, without allocating, when there are none
// (no Connection header, or "close" or "keep-alive" only).
func connectionListed(conn []string) listedFields {
	var out listedFields
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			switch {
			case f == "" || strings.EqualFold(f, "keep-alive"): // Keep-Alive goes anyway
				continue
			case strings.EqualFold(f, "close"):
				out = append(out, "Close") // without allocating a name
			default:
				out = append(out, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	return out
}

func (l listedFields) has(k string) bool {
	for _, f := range l {
		if f == k {
			return true
		}
	}
	return false
}

// removeHopByHopHeaders deletes the hop-by-hop fields of a response.
func removeHopByHopHeaders(hdr http.Header) {
	for _, f := range connectionListed(hdr["Connection"]) {
		delete(hdr, f)
	}
	for k := range hdr {
		if isHopHeader(k) {
			delete(hdr, k)
		}
	}
}

// upgradeType returns the protocol a header asks to switch to, or "".
func upgradeType(hdr http.Header) string {
	if !headerValuesContainToken(hdr["Connection"], "Upgrade") {
		return ""
	}
	return hdr.Get("Upgrade")
}

// headerValuesContainToken reports whether any comma-separated element of
// values is token, ignoring ASCII case and optional whitespace.
func headerValuesContainToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.Trim(f, " \t"); isASCII(f) && strings.EqualFold(f, token) {
				return true
			}
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isPrintASCII reports whether s has only printable ASCII characters.
func isPrintASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// streamed reports whether a response is flushed to the client after
// every read: server-sent events, and bodies of unknown length (chunked
// streams, long polls).
func streamed(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	const sse = "text/event-stream"
	if ct = strings.TrimLeft(ct, " \t"); len(ct) < len(sse) || !strings.EqualFold(ct[:len(sse)], sse) {
		return false // no allocation for the common case
	}
	base, _, _ := mime.ParseMediaType(ct)
	return base == sse
}

// copyBufferSize is the size of the buffers response bodies are copied
// through.
const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// readError is a failure to read the backend's body (a write error is the
// client's).
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

// copyBody copies src to dst through a pooled buffer, calling flush (if not
// nil) after every write; a flush that fails is ignored, as the next write
// tells. It returns the first write error, or a read error other than the
// end of the body as a readError.
func copyBody(dst io.Writer, src io.Reader, flush func() error) error {
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	for {
		nr, rerr := src.Read(buf[:])
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if flush != nil {
				flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return readError{rerr}
		}
	}
}

// switchProtocols completes an upgrade the backend accepted: the client's
// connection is hijacked (and tracked, see responseRecorder.Hijack), the
// backend's 101 goes to the client, and bytes are copied both ways until
// either side ends or the request's context does.
func (h *Handler) switchProtocols(rec *responseRecorder, out *http.Request, res *http.Response, reqUpgrade string) {
	resUpgrade := upgradeType(res.Header)
	if !isPrintASCII(resUpgrade) {
		res.Body.Close()
		h.proxyError(rec, out, fmt.Errorf("backend tried to switch to invalid protocol %q", resUpgrade))
		return
	}
	if !strings.EqualFold(reqUpgrade, resUpgrade) {
		res.Body.Close()
		h.proxyError(rec, out, fmt.Errorf("backend tried to switch protocol %q when %q was requested", resUpgrade, reqUpgrade))
		return
	}
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		h.proxyError(rec, out, errors.New("101 switching protocols response with a body that cannot be written"))
		return
	}
	conn, brw, err := rec.Hijack()
	if err != nil {
		backConn.Close()
		h.proxyError(rec, out, fmt.Errorf("hijack on protocol switch: %w", err))
		return
	}
	defer conn.Close()
	backDone := make(chan struct{})
	defer close(backDone)
	go func() {
		// The request's context ends when the handler returns or the
		// server shuts down: the backend's side closes then too.
		select {
		case <-out.Context().Done():
		case <-backDone:
		}
		backConn.Close()
	}()

	dropReservedCookies(res.Header)
	dst := rec.Header()
	for k, vv := range res.Header {
		dst[k] = append(dst[k], vv...)
	}
	res.Header = dst
	res.Body = nil // res.Write writes the head only
	if err := res.Write(brw); err != nil {
		h.log.Debug("write 101 to the client", "host", out.Host, "err", err)
		return
	}
	if err := brw.Flush(); err != nil {
		h.log.Debug("write 101 to the client", "host", out.Host, "err", err)
		return
	}
	errc := make(chan error, 2)
	go pipe(conn, backConn, errc)
	go pipe(backConn, conn, errc)
	// Until one direction fails, or both end.
	if err := <-errc; err == nil {
		<-errc
	}
}

// pipe copies src to dst; at src's end it half-closes dst when it can, so
// the other side sees the end and the opposite direction goes on.
func pipe(dst io.Writer, src io.Reader, errc chan<- error) {
	if _, err := io.Copy(dst, src); err != nil {
		errc <- err
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		errc <- cw.CloseWrite()
		return
	}
	errc <- errPipeDone
}

var errPipeDone = errors.New("upgraded connection: one direction ended")

// noopCloseReader is a request body the transport cannot close; reads
// after Close fail.
type noopCloseReader struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

func (b *noopCloseReader) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("proxy: read from the client's body after the request ended")
	}
	return b.rc.Read(p)
}

func (b *noopCloseReader) Close() error {
	b.closed.Store(true)
	return nil
}

// cleanQueryParams returns the query unchanged unless a backend could
// parse it differently from Go (a ';' separator, a bad %-escape, more than
// 10000 parameters); then it is re-encoded from what Go parses, dropping
// what Go cannot parse, as httputil.ReverseProxy does.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > 10000 {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// dropReservedCookies removes the Set-Cookie fields of h that set a cookie
// of Slipway's own (contract.CookiePrefix): a preview must not sign its
// visitors in or out of Slipway (cookie tossing).
func dropReservedCookies(h http.Header) {
	vv, ok := h["Set-Cookie"]
	if !ok {
		return
	}
	kept := vv[:0:0]
	for _, v := range vv {
		if !reservedCookie(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == len(vv) {
		return
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// reservedCookie reports whether a Set-Cookie value names a cookie of
// Slipway's. Browsers compare names exactly, but the test ignores case and
// the __Host- and __Secure- prefixes, so no near-miss gets through.
func reservedCookie(setCookie string) bool {
	name, _, _ := strings.Cut(setCookie, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	name = strings.TrimPrefix(strings.TrimPrefix(name, "__host-"), "__secure-")
	return strings.HasPrefix(name, contract.CookiePrefix)
}
