package webui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/autonode/autonode/registry"
)

// Options configures a Server. The zero value (with a Store) serves
// loopback clients without a token.
type Options struct {
	// Token, when set, is required on every request (see the package doc).
	Token string
	// Poll is how often the store is checked for changes; 0 means
	// DefaultPoll.
	Poll time.Duration
	// Name describes the store in the page header, e.g. the registry
	// file's path.
	Name string
}

// DefaultPoll is how often a Server looks for changes by default.
const DefaultPoll = 250 * time.Millisecond

// MinTokenLen is the shortest token a Server accepts.
const MinTokenLen = 16

// CookieName is the cookie that carries the token after a browser has
// presented it once as ?token=.
const CookieName = "autonode_ui_token"

// ErrBadToken: Options.Token is set but too short, or has characters that
// a cookie or an address cannot carry unchanged.
var ErrBadToken = errors.New("unusable token")

// ValidateToken checks a token for Options.Token: empty (no token), or at
// least MinTokenLen letters, digits and "-._~".
func ValidateToken(tok string) error {
	if tok == "" {
		return nil
	}
	if len(tok) < MinTokenLen {
		return fmt.Errorf("%w: it is %d characters long, want at least %d; make one with `autonode token`", ErrBadToken, len(tok), MinTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return fmt.Errorf("%w: character %q at byte %d; want letters, digits and \"-._~\" only", ErrBadToken, c, i)
		}
	}
	return nil
}

// Server is the web view's http.Handler. Create it with New and stop it
// with Close.
type Server struct {
	opts    Options
	w       *watcher
	mux     *http.ServeMux
	cancel  context.CancelFunc
	done    chan struct{}
	closing chan struct{}
	once    sync.Once
	token   [32]byte // sha256 of Options.Token
}

// New reads the store once and starts watching it for changes.
func New(store registry.Store, opts Options) (*Server, error) {
	if store == nil {
		return nil, errors.New("webui: no store given")
	}
	if err := ValidateToken(opts.Token); err != nil {
		return nil, err
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	w, err := newWatcher(store, opts.Poll)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, w: w, cancel: cancel, done: make(chan struct{}), closing: make(chan struct{})}
	if opts.Token != "" {
		s.token = sha256.Sum256([]byte(opts.Token))
	}
	s.routes()
	go func() {
		defer close(s.done)
		w.run(ctx)
	}()
	return s, nil
}

// Close stops watching the store and ends every open event stream. It does
// not close the store.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closing)
		s.cancel()
		<-s.done
		s.w.close()
	})
	return nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/summary", s.handleSummary)
	m.HandleFunc("GET /api/threads", s.handleThreads)
	m.HandleFunc("GET /api/threads/{id}", s.handleThread)
	m.HandleFunc("GET /api/threads/{id}/record", s.handleRecord)
	m.HandleFunc("GET /api/threads/{id}/log", s.handleLog)
	m.HandleFunc("GET /api/threads/{id}/metrics", s.handleMetrics)
	m.HandleFunc("GET /api/threads/{id}/result", s.handleResult)
	m.HandleFunc("GET /api/durations", s.handleDurations)
	m.HandleFunc("GET /api/lineage", s.handleLineage)
	m.HandleFunc("GET /api/events", s.handleEvents)
	m.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no API route %s; see the package documentation of webui for the routes", r.URL.Path)
	})
	m.HandleFunc("GET /", s.handleAsset)
	s.mux = m
}

// ServeHTTP implements http.Handler: it checks the method and the caller,
// sets the security headers, and routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed: this view is read-only (GET and HEAD only)", r.Method)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized checks the caller (see the package doc); when it returns
// false it has answered the request.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Token == "" {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "host %q is not a loopback name: this server has no token, so it answers only requests addressed to localhost, 127.0.0.1 or [::1]; serve with a token to be reached under other names", r.Host)
			return false
		}
		return true
	}
	if q := r.URL.Query(); q.Has("token") {
		if !s.tokenMatches(q.Get("token")) {
			writeError(w, http.StatusUnauthorized, "wrong token")
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: q.Get("token"), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		q.Del("token")
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Location", u.String())
		w.WriteHeader(http.StatusSeeOther)
		return false
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if ok && s.tokenMatches(tok) {
			return true
		}
		writeError(w, http.StatusUnauthorized, "wrong token in the Authorization header; want \"Bearer TOKEN\"")
		return false
	}
	if c, err := r.Cookie(CookieName); err == nil && s.tokenMatches(c.Value) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="autonode ui"`)
	writeError(w, http.StatusUnauthorized, "this server needs its token: open the address with ?token=TOKEN once (the browser keeps it in a cookie), or send \"Authorization: Bearer TOKEN\"")
	return false
}

// tokenMatches compares in constant time (over the digests, so that the
// token's length does not show either).
func (s *Server) tokenMatches(tok string) bool {
	d := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(d[:], s.token[:]) == 1
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface: localhost, 127.0.0.0/8 or ::1, with or without a
// port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a listen address ("host:port") binds only
// to loopback: an empty host binds every interface, so it is not.
func IsLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: %w; want HOST:PORT such as 127.0.0.1:8765", addr, err)
	}
	if host == "" {
		return false, nil
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		// A name other than localhost may resolve anywhere.
		return false, nil
	}
	return ip.IsLoopback(), nil
}
