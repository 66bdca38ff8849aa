package server_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"flotilla.dev/lib/testutil/registry"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mirrors is a registries.conf body sending the upstream registries to the local one.
func mirrors(addr string, insecure bool) string {
	var b strings.Builder
	for _, host := range registry.MirroredRegistries {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = %v\n", host, addr+"/"+host, insecure)
	}
	return b.String()
}

func TestShortNamesAndRegistriesConf(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox", "pause-3.10"}})
	conf := `unqualified-search-registries = ["registry.k8s.io", "docker.io"]
short-name-mode = "enforcing"

[aliases]
"pause" = "registry.k8s.io/pause"
` + mirrors(reg.Addr, true) + fmt.Sprintf(`
[[registry]]
location = "blocked.test"
blocked = true

[[registry]]
prefix = "secure.test"
location = "%s/docker.io"
`, strings.Replace(reg.Addr, "127.0.0.1", "localhost", 1))
	e := newEnv(t, reg, envOpts{registriesConf: conf})
	ctx := ctxT(t)

	// Two search registries in enforcing mode: a short name is ambiguous.
	_, err := e.pull(ctx, "busybox", nil)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "busybox") {
		t.Errorf("ambiguous short name: %v, want FailedPrecondition naming it", err)
	}
	// An alias resolves it; the rewritten location (no mirror needed) serves it.
	id, err := e.pull(ctx, "pause:3.10", nil)
	must(t, err)
	if img := e.status(ctx, "registry.k8s.io/pause:3.10"); img.GetId() != id {
		t.Errorf("aliased pull stored %v, want registry.k8s.io/pause:3.10 = %s", img, id)
	}
	// A fully qualified name needs no resolution; a rewritten prefix works.
	_, err = e.pull(ctx, "docker.io/library/busybox:latest", nil)
	must(t, err)
	// Blocked registries are refused.
	_, err = e.pull(ctx, "blocked.test/library/busybox:latest", nil)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("blocked registry: %v", err)
	}
	// A registry not marked insecure is reached over TLS only: the plain-HTTP test registry fails.
	_, err = e.pull(ctx, "secure.test/library/busybox:latest", nil)
	if err == nil {
		t.Error("pull over TLS from a plain-HTTP registry succeeded")
	}
	if imgs := e.list(ctx); len(imgs) != 2 {
		t.Errorf("%d images stored, want 2", len(imgs))
	}
}

func TestAuth(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}, User: "kube", Password: "s3cret"})
	e := newEnv(t, reg, envOpts{registriesConf: "unqualified-search-registries = [\"docker.io\"]\n" + mirrors(reg.Addr, true) +
		fmt.Sprintf("\n[[registry]]\nlocation = %q\ninsecure = true\n", reg.Addr)})
	ctx := ctxT(t)
	ref := reg.Local("docker.io/library/busybox:latest")

	_, err := e.pull(ctx, ref, nil)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous pull: %v, want Unauthenticated", err)
	}
	_, err = e.pull(ctx, ref, &runtimeapi.AuthConfig{Username: "kube", Password: "wrong"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong password: %v, want Unauthenticated", err)
	}
	if imgs := e.list(ctx); len(imgs) != 0 {
		t.Fatalf("refused pulls stored %v", imgs)
	}
	id, err := e.pull(ctx, ref, &runtimeapi.AuthConfig{Username: "kube", Password: "s3cret"})
	must(t, err)
	_, err = e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}})
	must(t, err)
	// The kubelet's "auth" form (base64 user:password).
	id2, err := e.pull(ctx, ref, &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))})
	must(t, err)
	if id2 != id {
		t.Errorf("ids %s %s", id, id2)
	}
}

// Token auth, as Docker Hub, GHCR and Quay do it, with each form of credentials the kubelet
// passes: username and password (a token fetched with them), identity_token (a refresh token
// exchanged for a token, OAuth2), registry_token (sent to the registry as it is).
func TestTokenAuth(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}, User: "kube", Password: "s3cret", Token: true})
	e := newEnv(t, reg, envOpts{registriesConf: fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.Addr)})
	ctx := ctxT(t)
	const repo = "docker.io/library/busybox"
	ref := reg.Local(repo + ":latest")
	token, err := reg.RegistryToken(repo)
	must(t, err)
	otherRepo, err := reg.RegistryToken("docker.io/library/other")
	must(t, err)

	// Credentials the token server refuses are Unauthenticated. A token it gives without access
	// to the repository (to an anonymous client, as Docker Hub does for a private repository, or
	// a registry token for another repository) is refused by the registry as insufficient_scope:
	// "requested access to the resource is denied", PermissionDenied.
	for _, c := range []struct {
		name string
		auth *runtimeapi.AuthConfig
		want codes.Code
	}{
		{"anonymous", nil, codes.PermissionDenied},
		{"wrong password", &runtimeapi.AuthConfig{Username: "kube", Password: "wrong"}, codes.Unauthenticated},
		{"unknown identity token", &runtimeapi.AuthConfig{IdentityToken: "not-issued"}, codes.Unauthenticated},
		{"registry token for another repository", &runtimeapi.AuthConfig{RegistryToken: otherRepo}, codes.PermissionDenied},
		{"registry token that is not one", &runtimeapi.AuthConfig{RegistryToken: "garbage"}, codes.Unauthenticated},
	} {
		if _, err := e.pull(ctx, ref, c.auth); status.Code(err) != c.want {
			t.Errorf("pull with %s: %v, want %s", c.name, err, c.want)
		}
	}
	if imgs := e.list(ctx); len(imgs) != 0 {
		t.Fatalf("refused pulls stored %v", imgs)
	}

	for _, c := range []struct {
		name  string
		auth  *runtimeapi.AuthConfig
		grant string // the token server's grant it takes; "" for none
	}{
		{"username and password", &runtimeapi.AuthConfig{Username: "kube", Password: "s3cret"}, registry.GrantBasic},
		{"auth (base64 user:password)", &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))}, registry.GrantBasic},
		{"identity token", &runtimeapi.AuthConfig{IdentityToken: reg.RefreshToken()}, registry.GrantRefresh},
		{"registry token", &runtimeapi.AuthConfig{RegistryToken: token}, ""},
	} {
		before := reg.TokenGrants()
		id, err := e.pull(ctx, ref, c.auth)
		if err != nil {
			t.Errorf("pull with %s: %v", c.name, err)
			continue
		}
		after := reg.TokenGrants()
		for _, g := range []string{registry.GrantBasic, registry.GrantPassword, registry.GrantRefresh, registry.GrantAnonymous} {
			if took := after[g] > before[g]; took != (g == c.grant) {
				t.Errorf("pull with %s: token grants %v before, %v after; want a new %q grant only", c.name, before, after, c.grant)
				break
			}
		}
		_, err = e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}})
		must(t, err)
	}
}

// Without kubelet credentials, the configured auth file is used.
func TestAuthFile(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}, User: "kube", Password: "s3cret"})
	auth := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Addr, base64.StdEncoding.EncodeToString([]byte("kube:s3cret")))
	e := newEnv(t, reg, envOpts{authFile: auth, registriesConf: fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.Addr)})
	ctx := ctxT(t)
	ref := reg.Local("docker.io/library/busybox:latest")
	_, err := e.pull(ctx, ref, nil)
	must(t, err)
	// Credentials from the kubelet take precedence over the file.
	_, err = e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	must(t, err)
	_, err = e.pull(ctx, ref, &runtimeapi.AuthConfig{Username: "kube", Password: "wrong"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("pull with wrong kubelet credentials: %v, want Unauthenticated", err)
	}
}
