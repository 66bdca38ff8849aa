package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"flotilla.dev/lib/testutil/registry"
	eventsv1 "flotilla.dev/proto/events/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// stallProxy forwards to the registry but holds requests for one blob until
// released (or the client goes away), announcing each stalled request.
type stallProxy struct {
	*httptest.Server
	mu      sync.Mutex
	blob    string
	corrupt bool // serve the blob with one byte changed instead of stalling
	release chan struct{}
	stalled chan struct{}
}

func newStallProxy(t *testing.T, reg *registry.Registry, blob string) *stallProxy {
	u, err := url.Parse("http://" + reg.Addr)
	must(t, err)
	p := &stallProxy{blob: blob, release: make(chan struct{}), stalled: make(chan struct{}, 16)}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+p.blob) && p.corrupt {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 100 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/blobs/"+p.blob) {
			p.stalled <- struct{}{}
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *stallProxy) addr() string { return strings.TrimPrefix(p.URL, "http://") }

func stalledEnv(t *testing.T, timeout time.Duration) (*env, *stallProxy, string) {
	return proxiedEnv(t, timeout, false)
}

func proxiedEnv(t *testing.T, timeout time.Duration, corrupt bool) (*env, *stallProxy, string) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	out, err := reg.Skopeo(ctxT(t), "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Local("docker.io/library/busybox:latest"))
	must(t, err)
	var m struct{ Layers []struct{ Digest string } }
	must(t, json.Unmarshal(out, &m))
	if len(m.Layers) < 2 {
		t.Fatalf("busybox has %d layers, the test needs 2", len(m.Layers))
	}
	// The base layer arrives and is committed; the top one stalls.
	p := newStallProxy(t, reg, m.Layers[len(m.Layers)-1].Digest)
	p.corrupt = corrupt
	conf := fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", p.addr())
	e := newEnv(t, reg, envOpts{registriesConf: conf, progress: timeout})
	return e, p, p.addr() + "/docker.io/library/busybox:latest"
}

// A stall on the top layer leaves the base layer committed to the store,
// which a failed pull must not keep.
func TestPullProgressTimeout(t *testing.T) {
	e, _, ref := stalledEnv(t, time.Second)
	_, err := e.pull(ctxT(t), ref, nil)
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("stalled pull: %v, want DeadlineExceeded saying no progress", err)
	}
	if l, i := e.stored(); l != 0 || i != 0 {
		t.Errorf("timed-out pull left %d layers, %d images", l, i)
	}
	if f := e.eventsOn(eventsv1.SubjectImageFailed); len(f) != 1 || !strings.Contains(f[0].Message, "no progress") {
		t.Errorf("failed events = %v", f)
	}
}

func TestCancelledPullLeavesNothing(t *testing.T) {
	e, p, ref := stalledEnv(t, time.Hour)
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := e.pull(ctx, ref, nil)
		errc <- err
	}()
	<-p.stalled
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled pull: %v", err)
	}
	// The detached pull ends once its last caller is gone; then its layers go.
	deadline := time.Now().Add(time.Minute)
	for {
		l, i := e.stored()
		if len(e.eventsOn(eventsv1.SubjectImageFailed)) == 1 && l == 0 && i == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cancelled pull left %d layers, %d images", l, i)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
	// Once the registry answers again the same pull works.
	close(p.release)
	id, err := e.pull(ctxT(t), ref, nil)
	must(t, err)
	if e.status(ctxT(t), ref).GetId() != id {
		t.Error("image not stored after the retry")
	}
}

// A layer whose bytes do not match its digest fails the pull; the layers
// committed before it are not kept.
func TestCorruptLayerLeavesNothing(t *testing.T) {
	e, _, ref := proxiedEnv(t, time.Minute, true)
	_, err := e.pull(ctxT(t), ref, nil)
	if status.Code(err) != codes.DataLoss || !strings.Contains(err.Error(), "Digest did not match") {
		t.Fatalf("pull of a corrupt layer: %v, want DataLoss saying the digest did not match", err)
	}
	if l, i := e.stored(); l != 0 || i != 0 {
		t.Errorf("corrupt pull left %d layers, %d images", l, i)
	}
}
