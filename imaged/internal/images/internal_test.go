package images

import (
	"encoding/base64"
	"errors"
	"slices"
	"testing"

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
