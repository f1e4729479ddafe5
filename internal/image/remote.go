package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slimbuild/slimbuild/internal/store"
)

// Registry configures how slimbuild talks to registries when it pushes, and when
// it reads or writes a registry build cache. The zero value is ready to use.
type Registry struct {
	// Insecure lists registry hosts ("host" or "host:port") reached over plain
	// http. Loopback hosts (localhost, 127.0.0.0/8, ::1) always are.
	Insecure []string
	// Transport replaces the default HTTP transport (tests count or break requests with it).
	Transport http.RoundTripper
	// Timeout bounds the wait for each response's headers (default 2 minutes);
	// a request that times out is retried like a 5xx.
	Timeout time.Duration
	// Keychain finds credentials (default: the docker config file and its credential helpers).
	Keychain authn.Keychain
	// Progress, when set, is called during a push with the bytes written so far
	// and the total, from one goroutine at a time.
	Progress func(complete, total int64)
}

// RetryStatusCodes are the HTTP statuses a request is retried on, with backoff.
var RetryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// Two layers of retries: every request is retried on its own (retryTransport:
// 0.5 s, 1 s, 2 s, 4 s, then give up), and go-containerregistry retries whole
// operations (a blob upload is HEAD, POST, PATCH, PUT) on top (retryBackoff).
var (
	requestBackoff = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}
	retryBackoff   = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}
)

// IsLoopback reports whether a registry host ("host[:port]") is this machine.
func IsLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Ref parses an image reference for the registry, over plain http when its host
// is loopback or listed as insecure.
func (r *Registry) Ref(s string) (name.Reference, error) {
	ref, err := parseRef(s)
	if err != nil {
		return nil, err
	}
	host := ref.Context().RegistryStr()
	if !IsLoopback(host) && !slices.Contains(r.Insecure, host) {
		return ref, nil
	}
	ref, err = name.ParseReference(ref.String(), name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", s, err)
	}
	return ref, nil
}

// Options are the go-containerregistry options for one operation under ctx.
func (r *Registry) Options(ctx context.Context) []remote.Option {
	kc := r.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	o := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(r.baseTransport()),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryStatusCodes(RetryStatusCodes...),
		remote.WithRetryPredicate(retryable(ctx)),
		remote.WithPlatform(Platform()),
		remote.WithUserAgent("slimbuild"),
	}
	return o
}

// retryable says which errors of an operation under ctx are worth another try:
// go-containerregistry's (temporary errors, connections cut short) and also a
// request that timed out, which go-containerregistry does not retry because the
// error looks like a deadline; but it is the transport's, not ctx's.
func retryable(ctx context.Context) func(error) bool {
	return func(err error) bool {
		if err == nil || ctx.Err() != nil {
			return false
		}
		var te interface{ Temporary() bool }
		if errors.As(err, &te) && te.Temporary() {
			return true
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return true
		}
		return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
			errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
	}
}

// baseTransport is r.Transport, or the default transport with r's timeout, with
// each request retried on its own.
func (r *Registry) baseTransport() http.RoundTripper {
	t := r.Transport
	if t == nil {
		ht := remote.DefaultTransport.(*http.Transport).Clone()
		ht.ResponseHeaderTimeout = r.Timeout
		if ht.ResponseHeaderTimeout <= 0 {
			ht.ResponseHeaderTimeout = 2 * time.Minute
		}
		t = ht
	}
	return &retryTransport{inner: t, backoff: requestBackoff}
}

// retryTransport sends a request again, after a pause, when it times out, its
// connection breaks or the registry answers with one of RetryStatusCodes, as long
// as its body can be sent again (GetBody) and its context is not done.
// go-containerregistry retries only requests without a body this way; a blob
// upload through a registry that fails one request in three would never finish.
type retryTransport struct {
	inner   http.RoundTripper
	backoff remote.Backoff
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.backoff // Step counts b.Steps down
	for attempt := 1; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		again := attempt < t.backoff.Steps && req.Context().Err() == nil && (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil)
		if err == nil && (!again || !slices.Contains(RetryStatusCodes, resp.StatusCode)) {
			return resp, nil
		}
		if err != nil && (!again || !retryable(req.Context())(err)) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-time.After(b.Step()):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		next := req.Clone(req.Context())
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			next.Body = body
		}
		req = next
	}
}

// Explain adds what to do to an error from the registry host: credentials it
// refused wrap ErrUnauthorized and say how to log in.
func Explain(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("registry %s: %w (run \"slimbuild login %s\"): %v", host, ErrUnauthorized, host, err)
	}
	return fmt.Errorf("registry %s: %w", host, err)
}

// write runs remote.Write with r's options, reporting progress when asked.
func (r *Registry) write(ctx context.Context, ref name.Reference, img v1.Image) error {
	o := r.Options(ctx)
	if r.Progress == nil {
		return remote.Write(ref, img, o...)
	}
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates { // remote.Write closes updates when it returns
			if u.Error == nil {
				r.Progress(u.Complete, u.Total)
			}
		}
	}()
	err := remote.Write(ref, img, append(o, remote.WithProgress(updates))...)
	<-done
	return err
}

// PushImage uploads img to dest and returns the digest the registry now holds.
// Blobs the registry has are not uploaded again.
func (r *Registry) PushImage(ctx context.Context, img v1.Image, dest string) (v1.Hash, error) {
	ref, err := r.Ref(dest)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := r.write(ctx, ref, img); err != nil {
		return v1.Hash{}, Explain(ref.Context().RegistryStr(), err)
	}
	return d, nil
}

// Push uploads img to dest with its layers compressed as c says (see
// Compressed: layers stored otherwise are converted, deterministically) and
// returns the digest of the manifest pushed, which differs from img's when a
// layer was converted.
func (r *Registry) Push(ctx context.Context, st *store.Store, img v1.Image, dest string, c store.Compression) (v1.Hash, error) {
	out, err := Compressed(ctx, st, img, c)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing to %q: %w", dest, err)
	}
	return r.PushImage(ctx, out, dest)
}

// PushStored pushes the stored image src (a name or digest) to dest, its
// layers compressed as c says (see Push). A name for an index pushes the whole
// index, its images as stored.
func (r *Registry) PushStored(ctx context.Context, st *store.Store, src, dest string, c store.Compression) (v1.Hash, error) {
	if idx, err := storedIndex(st, src); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %q: %w", src, err)
	} else if idx != nil {
		d, err := r.PushIndex(ctx, idx, dest)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %q to %q: %w", src, dest, err)
		}
		return d, nil
	}
	img, err := fromStore(st, src)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %q: %w", src, err)
	}
	d, err := r.Push(ctx, st, img, dest, c)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %q to %q: %w", src, dest, err)
	}
	return d, nil
}
