// Package registry runs a local image registry for tests: Debian's docker-registry on a loopback
// port, holding the test images built by hack/build-test-images.sh (see test/images/images.txt),
// with a registries.conf that mirrors registry.k8s.io, k8s.gcr.io, gcr.io and docker.io to it and
// a policy.json accepting anything. A pull of "registry.k8s.io/pause:3.10" through that
// registries.conf is served by the local registry, offline.
//
// Each image is stored in the registry under its upstream host and path, e.g.
// registry.k8s.io/pause:3.10 as 127.0.0.1:PORT/registry.k8s.io/pause:3.10 (see Local).
package registry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MirroredRegistries are the upstream registries that registries.conf sends to the local registry.
var MirroredRegistries = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "quay.io"}

// Options select what Start pushes and how the registry is protected.
type Options struct {
	// Images lists image names of test/images/images.txt (e.g. "busybox", "pause-3.10") to push;
	// nil pushes every image except "large"; use AllImages for everything.
	Images []string
	// User and Password, when User is set, protect the registry with basic auth (bcrypt htpasswd);
	// anonymous requests are refused. The images are pushed with these credentials.
	User, Password string
	// Token, with User, protects the registry with token auth instead, as Docker Hub, GHCR or
	// Quay do: a token server in this process issues signed JWTs for User and Password and for
	// RefreshToken (an identity token); an anonymous client gets a token without access.
	Token bool
	// ConfigDir receives registries.conf and policy.json; default: the registry's own directory.
	ConfigDir string
	// ImagesDir is the directory of the OCI layouts; default: $FLOTILLA_TEST_IMAGES or
	// <repo>/.tools/images, built (or refreshed) with hack/build-test-images.sh when needed.
	ImagesDir string
}

// AllImages, as Options.Images, pushes every image, including the large one.
var AllImages = []string{"*"}

// Image is one line of images.txt: an OCI layout name and the upstream references it stands for.
type Image struct {
	Name string
	Refs []string // "host/path:tag"
}

// Registry is a running local registry.
type Registry struct {
	// Addr is host:port of the registry (127.0.0.1:PORT).
	Addr string
	// Dir holds the registry's configuration, storage and log; removed by Stop.
	Dir string
	// RegistriesConf and PolicyJSON are the paths of the files written for clients.
	RegistriesConf, PolicyJSON string
	// Images are the images pushed.
	Images []Image

	opts    Options
	tokens  *tokenServer
	cmd     *exec.Cmd
	done    chan struct{}
	stopped sync.Once
	stopErr error
}

// RepoRoot is the root of the flotilla checkout ($FLOTILLA_ROOT, else found from this file's path).
func RepoRoot() string {
	if r := os.Getenv("FLOTILLA_ROOT"); r != "" {
		return r
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// BuildImages runs hack/build-test-images.sh (a no-op when its cached output is current) and
// returns the directory of the OCI layouts.
func BuildImages(dir string) (string, error) {
	root := RepoRoot()
	if dir == "" {
		dir = os.Getenv("FLOTILLA_TEST_IMAGES")
	}
	if dir == "" {
		dir = filepath.Join(root, ".tools", "images")
	}
	cmd := exec.Command(filepath.Join(root, "hack", "build-test-images.sh"), dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/build-test-images.sh %s: %v\n%s", dir, err, out.String())
	}
	return dir, nil
}

// Catalog reads test/images/images.txt.
func Catalog() ([]Image, error) {
	path := filepath.Join(RepoRoot(), "test", "images", "images.txt")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var images []Image
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s: line %q: want NAME REF...", path, line)
		}
		images = append(images, Image{Name: fields[0], Refs: fields[1:]})
	}
	return images, sc.Err()
}

// splitRef splits "host/path:tag" into "host/path" and "tag".
func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

// Local returns the reference in the local registry that holds upstream reference ref (e.g.
// "registry.k8s.io/pause:3.10" → "127.0.0.1:PORT/registry.k8s.io/pause:3.10"). Docker Hub short
// names are normalised ("busybox" → docker.io/library/busybox).
func (r *Registry) Local(ref string) string {
	return r.Addr + "/" + Normalize(ref)
}

// Normalize qualifies a Docker Hub short name ("busybox" → "docker.io/library/busybox",
// "foo/bar" → "docker.io/foo/bar"); other references are returned unchanged.
func Normalize(ref string) string {
	first, rest, found := strings.Cut(ref, "/")
	switch {
	case !found:
		return "docker.io/library/" + ref
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		return "docker.io/" + ref
	case first == "docker.io" && !strings.Contains(rest, "/"):
		return "docker.io/library/" + rest
	}
	return ref
}

// Start starts a registry in dir (created if needed; Stop removes it), pushes the images selected
// by opts and writes registries.conf and policy.json.
func Start(dir string, opts Options) (*Registry, error) {
	for _, bin := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("registry: %s not installed: %w", bin, err)
		}
	}
	catalog, err := Catalog()
	if err != nil {
		return nil, err
	}
	selected, err := selectImages(catalog, opts.Images)
	if err != nil {
		return nil, err
	}
	imagesDir := opts.ImagesDir
	if imagesDir == "" || !fileExists(filepath.Join(imagesDir, ".stamp")) {
		if imagesDir, err = BuildImages(imagesDir); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &Registry{Dir: dir, Images: selected, opts: opts}
	if err := r.start(); err != nil {
		r.tokens.close()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.writeClientConfig(); err != nil {
		r.Stop()
		return nil, err
	}
	if err := r.push(imagesDir, selected); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// StartT starts a registry for a test in a temporary directory, stopped when the test ends.
func StartT(t testing.TB, opts Options) *Registry {
	t.Helper()
	dir, err := os.MkdirTemp("", "flotilla-registry-")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Start(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping the registry: %v", err)
		}
	})
	return r
}

func selectImages(catalog []Image, names []string) ([]Image, error) {
	if names == nil {
		var out []Image
		for _, im := range catalog {
			if im.Name != "large" {
				out = append(out, im)
			}
		}
		return out, nil
	}
	if len(names) == 1 && names[0] == "*" {
		return catalog, nil
	}
	byName := map[string]Image{}
	for _, im := range catalog {
		byName[im.Name] = im
	}
	var out []Image
	for _, n := range names {
		im, ok := byName[n]
		if !ok {
			known := make([]string, 0, len(byName))
			for k := range byName {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("registry: unknown test image %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, im)
	}
	return out, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start writes the registry's configuration and runs it until it answers on /v2/.
func (r *Registry) start() error {
	storage := filepath.Join(r.Dir, "storage")
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return err
	}
	auth := ""
	if r.opts.User != "" && !r.opts.Token {
		out, err := exec.Command("htpasswd", "-Bbn", r.opts.User, r.opts.Password).Output()
		if err != nil {
			return fmt.Errorf("registry: htpasswd (apache2-utils): %w", err)
		}
		htpasswd := filepath.Join(r.Dir, "htpasswd")
		if err := os.WriteFile(htpasswd, out, 0o600); err != nil {
			return err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: flotilla-test\n    path: %s\n", htpasswd)
	}
	if r.opts.User != "" && r.opts.Token {
		ts, err := newTokenServer(r.opts.User, r.opts.Password)
		if err != nil {
			return fmt.Errorf("registry: token server: %w", err)
		}
		r.tokens = ts
		bundle := filepath.Join(r.Dir, "token-cert.pem")
		if err := ts.writeCert(bundle); err != nil {
			return err
		}
		auth = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.realm(), tokenService, tokenIssuer, bundle)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		r.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: flotilla-test-registry
%s`, storage, r.Addr, auth)
		confPath := filepath.Join(r.Dir, "config.yml")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			return err
		}
		if lastErr = r.run(confPath); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

func (r *Registry) run(confPath string) error {
	logPath := filepath.Join(r.Dir, "registry.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("docker-registry", "serve", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("registry: starting docker-registry: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done

	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("registry: docker-registry exited at start: %s\n%s", cmd.ProcessState, tail(log))
		default:
		}
		resp, err := client.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		if time.Now().After(deadline) {
			r.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("registry: docker-registry not answering on %s: %v\n%s", r.Addr, err, tail(log))
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness, not synchronisation by time
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (r *Registry) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}

// Stop kills the registry and removes its directory (and the client configuration it wrote).
// Stopping twice is fine.
func (r *Registry) Stop() error {
	r.stopped.Do(func() {
		r.kill()
		r.tokens.close()
		if r.opts.ConfigDir != "" {
			os.Remove(r.RegistriesConf)
			os.Remove(r.PolicyJSON)
		}
		r.stopErr = os.RemoveAll(r.Dir)
	})
	return r.stopErr
}

// TokenRealm is the token server's URL when the registry uses token auth (Options.Token), else "".
func (r *Registry) TokenRealm() string {
	if r.tokens == nil {
		return ""
	}
	return r.tokens.realm()
}

// RefreshToken is the refresh token the token server accepts (what a kubelet sends as
// identity_token, and what `docker login` stores), "" without token auth.
func (r *Registry) RefreshToken() string {
	if r.tokens == nil {
		return ""
	}
	return r.tokens.refresh
}

// TokenGrants counts the tokens issued so far by grant (GrantBasic, GrantPassword, GrantRefresh,
// GrantAnonymous); nil without token auth.
func (r *Registry) TokenGrants() map[string]int {
	if r.tokens == nil {
		return nil
	}
	r.tokens.mu.Lock()
	defer r.tokens.mu.Unlock()
	return maps.Clone(r.tokens.grants)
}

// RegistryToken returns a token for pulling repository repo of the local registry (e.g.
// "docker.io/library/busybox"), as a kubelet's registry_token; it fails without token auth.
func (r *Registry) RegistryToken(repo string) (string, error) {
	if r.tokens == nil {
		return "", errors.New("registry: no token auth (Options.Token)")
	}
	return r.tokens.sign([]tokenAccess{{Type: "repository", Name: repo, Actions: []string{"pull"}}})
}

// RegistriesConfText is the registries.conf (v2) content that mirrors the upstream registries to
// the local registry at addr.
func RegistriesConfText(addr string) string {
	var b strings.Builder
	// Locations are rewritten rather than mirrored: with a mirror,
	// containers/image falls back to the real registry when the mirror lacks
	// an image, and tests must never reach outside this machine.
	b.WriteString("# Written by flotilla lib/testutil/registry: upstream registries served by a local test registry.\n")
	b.WriteString("unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n")
	for _, host := range MirroredRegistries {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", host, addr+"/"+host)
	}
	fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", addr)
	return b.String()
}

// PolicyJSONText accepts every image.
const PolicyJSONText = `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n"

func (r *Registry) writeClientConfig() error {
	dir := r.opts.ConfigDir
	if dir == "" {
		dir = r.Dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.RegistriesConf = filepath.Join(dir, "registries.conf")
	r.PolicyJSON = filepath.Join(dir, "policy.json")
	if err := os.WriteFile(r.RegistriesConf, []byte(RegistriesConfText(r.Addr)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(r.PolicyJSON, []byte(PolicyJSONText), 0o644)
}

// Skopeo runs skopeo with the registry's registries.conf and policy (skopeo 1.9 takes
// --registries-conf as a hidden global flag; its inspect needs --no-tags, as listing tags ignores
// mirrors), e.g. r.Skopeo(ctx, "inspect", "--no-tags", "docker://registry.k8s.io/pause:3.10").
func (r *Registry) Skopeo(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--registries-conf", r.RegistriesConf, "--policy", r.PolicyJSON}, args...)
	cmd := exec.CommandContext(ctx, "skopeo", full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("skopeo %s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Push copies the layouts of images (from imagesDir) into the registry, each under every upstream
// reference it stands for.
func (r *Registry) push(imagesDir string, images []Image) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var errs []error
	for _, im := range images {
		for _, ref := range im.Refs {
			_, tag := splitRef(ref)
			src := fmt.Sprintf("oci:%s:%s", filepath.Join(imagesDir, im.Name), tag)
			args := []string{"--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"}
			if r.opts.User != "" {
				args = append(args, "--dest-creds", r.opts.User+":"+r.opts.Password)
			}
			args = append(args, src, "docker://"+r.Local(ref))
			cmd := exec.CommandContext(ctx, "skopeo", args...)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("registry: pushing %s as %s: %v: %s", src, ref, err, strings.TrimSpace(string(out))))
			}
		}
	}
	return errors.Join(errs...)
}

// Main runs a test binary's tests with one registry for all of them (pushing once), stopped at
// the end; *reg is set before the tests run. Use it from TestMain:
//
//	var reg *registry.Registry
//	func TestMain(m *testing.M) { os.Exit(registry.Main(m, registry.Options{}, &reg)) }
func Main(m *testing.M, opts Options, reg **Registry) int {
	dir, err := os.MkdirTemp("", "flotilla-registry-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		return 1
	}
	r, err := Start(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "registry:", err)
		return 1
	}
	*reg = r
	code := m.Run()
	if err := r.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "registry: stop:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
