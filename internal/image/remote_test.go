package image

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRegistryRefScheme(t *testing.T) {
	r := &Registry{Insecure: []string{"build-cache.internal:5000"}}
	cases := []struct{ ref, scheme string }{
		{"localhost:5000/app:1", "http"},
		{"127.0.0.1:5000/app:1", "http"},
		{"127.0.0.2:5000/app:1", "http"},
		{"[::1]:5000/app:1", "http"},
		{"build-cache.internal:5000/app:1", "http"},
		{"build-cache.internal:5001/app:1", "https"},
		{"build-cache.internal/app:1", "https"},
		{"registry.example.com/app:1", "https"},
		{"busybox", "https"},
		{"localhost.example.com/app:1", "https"},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			ref, err := r.Ref(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.Context().Scheme(); got != tc.scheme {
				t.Errorf("scheme %s, want %s", got, tc.scheme)
			}
		})
	}
}

// TestRetryTransport: a request with a body is sent again, whole, after 503s and
// after a response that never comes; a 404 is not retried.
func TestRetryTransport(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch k := n.Add(1); {
		case r.URL.Path == "/missing":
			http.NotFound(w, r)
		case k == 1 || k == 2:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case k == 3:
			time.Sleep(2 * time.Second) // past the client's timeout
		case string(body) != "payload":
			http.Error(w, "bad body "+string(body), http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	rt := (&Registry{Timeout: 300 * time.Millisecond}).baseTransport()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, srv.URL+"/blob", bytes.NewReader([]byte("payload")))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || n.Load() != 4 {
		t.Errorf("status %d after %d requests, want 201 after 4", resp.StatusCode, n.Load())
	}
	n.Store(10)
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/missing", nil)
	resp, err = rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || n.Load() != 11 {
		t.Errorf("404: status %d after %d requests, want one request", resp.StatusCode, n.Load()-10)
	}
}
