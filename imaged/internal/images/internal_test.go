package images

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestApplyAuth(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("u:p:with:colons"))
	for _, c := range []struct {
		in    *runtimeapi.AuthConfig
		want  *types.DockerAuthConfig
		token string
		err   error
	}{
		{nil, nil, "", nil},
		{&runtimeapi.AuthConfig{Username: "u", Password: "p"}, &types.DockerAuthConfig{Username: "u", Password: "p"}, "", nil},
		{&runtimeapi.AuthConfig{Auth: b64, Username: "ignored"}, &types.DockerAuthConfig{Username: "u", Password: "p:with:colons"}, "", nil},
		{&runtimeapi.AuthConfig{IdentityToken: "id"}, &types.DockerAuthConfig{IdentityToken: "id"}, "", nil},
		{&runtimeapi.AuthConfig{RegistryToken: "rt"}, nil, "rt", nil},
		{&runtimeapi.AuthConfig{Auth: "!!"}, nil, "", errdefs.ErrInvalidArgument},
		{&runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("nocolon"))}, nil, "", errdefs.ErrInvalidArgument},
	} {
		var sys types.SystemContext
		err := applyAuth(&sys, c.in)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("%v: error %v, want %v", c.in, err, c.err)
			continue
		}
		if (sys.DockerAuthConfig == nil) != (c.want == nil) || (c.want != nil && *sys.DockerAuthConfig != *c.want) || sys.DockerBearerRegistryToken != c.token {
			t.Errorf("%v: got %+v %q, want %+v %q", c.in, sys.DockerAuthConfig, sys.DockerBearerRegistryToken, c.want, c.token)
		}
	}
	// Different credentials never share a pull.
	a, b := types.SystemContext{}, types.SystemContext{}
	_ = applyAuth(&a, &runtimeapi.AuthConfig{Username: "u", Password: "1"})
	_ = applyAuth(&b, &runtimeapi.AuthConfig{Username: "u", Password: "2"})
	if authKey(&a) == authKey(&b) {
		t.Error("two passwords, one coalescing key")
	}
}

func TestRepoTagsDigests(t *testing.T) {
	d1 := digest.FromString("list")
	d2 := digest.FromString("instance")
	img := &storage.Image{
		ID: "abc",
		Names: []string{
			"docker.io/library/busybox:latest",
			"registry.k8s.io/e2e-test-images/busybox:1.29-2",
			"docker.io/library/busybox@" + d1.String(),
		},
		Digest:  d2,
		Digests: []digest.Digest{d1, d2},
	}
	tags, digests := repoTagsDigests(img)
	if want := []string{"docker.io/library/busybox:latest", "registry.k8s.io/e2e-test-images/busybox:1.29-2"}; !slices.Equal(tags, want) {
		t.Errorf("tags %v, want %v", tags, want)
	}
	want := []string{
		"docker.io/library/busybox@" + d1.String(),
		"docker.io/library/busybox@" + d2.String(),
		"registry.k8s.io/e2e-test-images/busybox@" + d1.String(),
		"registry.k8s.io/e2e-test-images/busybox@" + d2.String(),
	}
	slices.Sort(want)
	if !slices.Equal(digests, want) {
		t.Errorf("digests %v, want %v", digests, want)
	}
}

// A fetch that stops reading is cancelled, and progress is still drained
// afterwards (copy blocks on the channel until it notices the cancel).
func TestWatchCancelsStalledFetchAndKeepsDraining(t *testing.T) {
	s := New(Options{ProgressTimeout: 20 * time.Millisecond})
	progress := make(chan types.ProgressProperties)
	stop := make(chan struct{})
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watch("img", progress, stop, cancel, slog.Default())
	}()
	progress <- types.ProgressProperties{Event: types.ProgressEventNewArtifact}
	progress <- types.ProgressProperties{Event: types.ProgressEventRead, OffsetUpdate: 10}
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), ErrProgressTimeout) || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Fatalf("cause %v", context.Cause(ctx))
	}
	for range 3 {
		progress <- types.ProgressProperties{Event: types.ProgressEventRead, OffsetUpdate: 1}
	}
	close(stop)
	<-done
}
