package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type inspectOut struct {
	Name   string
	Digest string
	Layers []string
}

type configOut struct {
	Config struct {
		Cmd        []string
		Entrypoint []string
		User       string
	} `json:"config"`
}

func inspect(t *testing.T, r *Registry, ref string) inspectOut {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Skopeo(ctx, "inspect", "--no-tags", "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	var io inspectOut
	if err := json.Unmarshal(out, &io); err != nil {
		t.Fatalf("skopeo inspect %s: %v: %s", ref, err, out)
	}
	return io
}

func inspectConfig(t *testing.T, r *Registry, ref string) configOut {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Skopeo(ctx, "inspect", "--config", "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	var c configOut
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("skopeo inspect --config %s: %v: %s", ref, err, out)
	}
	return c
}

// The upstream names resolve, through registries.conf's mirrors, to the images pushed to the local
// registry; pause 3.9 and 3.10 are different images, the same 3.9 is served under both registries.
func TestMirroredPull(t *testing.T) {
	configDir := t.TempDir()
	r := StartT(t, Options{Images: []string{"busybox", "pause-3.10", "pause-3.9"}, ConfigDir: configDir})
	if r.RegistriesConf != filepath.Join(configDir, "registries.conf") {
		t.Fatalf("registries.conf at %s, want it in %s", r.RegistriesConf, configDir)
	}

	bb := inspect(t, r, "registry.k8s.io/e2e-test-images/busybox:1.29-2")
	if bb.Digest == "" || len(bb.Layers) == 0 {
		t.Fatalf("busybox through the mirror: %+v", bb)
	}
	if c := inspectConfig(t, r, "registry.k8s.io/e2e-test-images/busybox:1.29-2"); strings.Join(c.Config.Cmd, " ") != "sh" {
		t.Errorf("busybox Cmd = %q, want [sh]", c.Config.Cmd)
	}
	if hub := inspect(t, r, "docker.io/library/busybox:latest"); hub.Digest != bb.Digest {
		t.Errorf("docker.io/library/busybox:latest is %s, want the busybox image %s", hub.Digest, bb.Digest)
	}

	p310 := inspect(t, r, "registry.k8s.io/pause:3.10")
	p39 := inspect(t, r, "registry.k8s.io/pause:3.9")
	p39gcr := inspect(t, r, "k8s.gcr.io/pause:3.9")
	if p310.Digest == p39.Digest {
		t.Errorf("pause:3.10 and pause:3.9 are the same image %s", p310.Digest)
	}
	if p39.Digest != p39gcr.Digest {
		t.Errorf("registry.k8s.io/pause:3.9 is %s but k8s.gcr.io/pause:3.9 is %s", p39.Digest, p39gcr.Digest)
	}
	if c := inspectConfig(t, r, "registry.k8s.io/pause:3.10"); strings.Join(c.Config.Entrypoint, " ") != "/catatonit -P" {
		t.Errorf("pause Entrypoint = %q, want [/catatonit -P]", c.Config.Entrypoint)
	}

	// An image that was not pushed is not found (and not fetched from anywhere else).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := r.Skopeo(ctx, "inspect", "--no-tags", "docker://registry.k8s.io/e2e-test-images/nginx:1.14-2"); err == nil {
		t.Errorf("nginx was not pushed but inspect succeeded: %s", out)
	}

	dir := r.Dir
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("registry dir %s still there after Stop: %v", dir, err)
	}
	if _, err := http.Get("http://" + r.Addr + "/v2/"); err == nil {
		t.Errorf("registry still answering on %s after Stop", r.Addr)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// With basic auth, anonymous requests are refused and the credentials work.
func TestBasicAuth(t *testing.T) {
	r := StartT(t, Options{Images: []string{"busybox"}, User: "flotilla", Password: "s3cret-pw"})
	ref := "docker://" + r.Local("registry.k8s.io/e2e-test-images/busybox:1.29-2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out, err := r.Skopeo(ctx, "inspect", "--tls-verify=false", "--no-creds", ref)
	if err == nil {
		t.Fatalf("anonymous inspect of %s succeeded: %s", ref, out)
	}
	if !strings.Contains(strings.ToLower(err.Error()), "unauthorized") && !strings.Contains(err.Error(), "401") {
		t.Errorf("anonymous inspect failed, but not as unauthorized: %v", err)
	}
	if _, err := r.Skopeo(ctx, "inspect", "--tls-verify=false", "--creds", "flotilla:wrong", ref); err == nil {
		t.Errorf("inspect with a wrong password succeeded")
	}
	if _, err := r.Skopeo(ctx, "inspect", "--tls-verify=false", "--creds", "flotilla:s3cret-pw", ref); err != nil {
		t.Errorf("inspect with the credentials: %v", err)
	}
}

// Token auth as Docker Hub does it: the registry sends clients to the token server, which gives a
// token with access only for the credentials, and the registry honours only its own server's tokens
// for the repository they name.
func TestTokenAuth(t *testing.T) {
	r := StartT(t, Options{Images: []string{"busybox"}, User: "flotilla", Password: "s3cret-pw", Token: true})
	const repo = "registry.k8s.io/e2e-test-images/busybox"
	ref := "docker://" + r.Local(repo+":1.29-2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	resp, err := http.Get("http://" + r.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("Www-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `Bearer realm="`+r.TokenRealm()+`"`) {
		t.Fatalf("GET /v2/ without a token: %d %q, want 401 with a Bearer challenge for %s", resp.StatusCode, ch, r.TokenRealm())
	}
	if out, err := r.Skopeo(ctx, "inspect", "--tls-verify=false", "--no-creds", ref); err == nil {
		t.Fatalf("anonymous inspect of %s succeeded: %s", ref, out)
	}
	if _, err := r.Skopeo(ctx, "inspect", "--tls-verify=false", "--creds", "flotilla:wrong", ref); err == nil {
		t.Errorf("inspect with a wrong password succeeded")
	}
	if _, err := r.Skopeo(ctx, "inspect", "--tls-verify=false", "--creds", "flotilla:s3cret-pw", ref); err != nil {
		t.Errorf("inspect with the credentials: %v", err)
	}
	if g := r.TokenGrants(); g[GrantAnonymous] == 0 || g[GrantBasic] == 0 {
		t.Errorf("token grants %v: want anonymous and basic ones", g)
	}

	manifest := func(repo, token string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/"+repo+"/manifests/1.29-2", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok, err := r.RegistryToken(repo)
	if err != nil {
		t.Fatal(err)
	}
	if code := manifest(repo, tok); code != http.StatusOK {
		t.Errorf("manifest with a registry token: HTTP %d", code)
	}
	other, err := r.RegistryToken("docker.io/library/other")
	if err != nil {
		t.Fatal(err)
	}
	if code := manifest(repo, other); code != http.StatusUnauthorized {
		t.Errorf("manifest with a token for another repository: HTTP %d, want 401", code)
	}
	// Signed by another key: a token server the registry does not trust.
	forged, err := newTokenServer("flotilla", "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	forged.close()
	bad, err := forged.sign([]tokenAccess{{Type: "repository", Name: repo, Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	if code := manifest(repo, bad); code != http.StatusUnauthorized {
		t.Errorf("manifest with a token of an untrusted signer: HTTP %d, want 401", code)
	}
}

func TestUnknownImageRefused(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(filepath.Join(dir, "reg"), Options{Images: []string{"no-such-image"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-image") {
		t.Fatalf("Start with an unknown image: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "reg")); !os.IsNotExist(err) {
		t.Errorf("Start failed but left %s behind", filepath.Join(dir, "reg"))
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                    "docker.io/library/busybox",
		"busybox:1.36":               "docker.io/library/busybox:1.36",
		"foo/bar:1":                  "docker.io/foo/bar:1",
		"docker.io/busybox":          "docker.io/library/busybox",
		"registry.k8s.io/pause:3.10": "registry.k8s.io/pause:3.10",
		"localhost/x/y":              "localhost/x/y",
		"127.0.0.1:5000/x":           "127.0.0.1:5000/x",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every reference of images.txt (all images but the large one) resolves through the mirrors, and
// the images critest tells apart are different images.
func TestAllImagesThroughMirrors(t *testing.T) {
	r := StartT(t, Options{})
	digests := map[string]string{}
	for _, im := range r.Images {
		if im.Name == "large" {
			t.Errorf("the large image is pushed by default")
		}
		for _, ref := range im.Refs {
			digests[ref] = inspect(t, r, ref).Digest
		}
	}
	k := "gcr.io/k8s-staging-cri-tools/"
	for _, same := range [][2]string{
		{k + "test-image-tags:1", k + "test-image-tags:2"},
		{k + "test-image-tags:1", k + "test-image-tags:3"},
		{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"},
	} {
		if digests[same[0]] != digests[same[1]] {
			t.Errorf("%s and %s should be one image", same[0], same[1])
		}
	}
	different := []string{k + "test-image-latest:latest", k + "test-image-1:latest", k + "test-image-2:latest",
		k + "test-image-3:latest", k + "test-image-tags:1", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.9",
		"registry.k8s.io/e2e-test-images/busybox:1.29-2"}
	seen := map[string]string{}
	for _, ref := range different {
		if other, dup := seen[digests[ref]]; dup {
			t.Errorf("%s and %s are the same image %s", ref, other, digests[ref])
		}
		seen[digests[ref]] = ref
	}
	for ref, user := range map[string]string{
		k + "test-image-user-uid":            "1002",
		k + "test-image-user-username":       "www-data",
		k + "test-image-user-uid-group":      "1003:1004",
		k + "test-image-user-username-group": "www-data:1004",
		k + "test-image-predefined-group":    "1000",
	} {
		if c := inspectConfig(t, r, ref+":latest"); c.Config.User != user {
			t.Errorf("%s: User %q, want %q", ref, c.Config.User, user)
		}
	}
}
