package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/types"
)

func TestResolvePull(t *testing.T) {
	dir := t.TempDir()
	conf := func(mode string) *types.SystemContext {
		p := filepath.Join(dir, mode+".conf")
		body := `unqualified-search-registries = ["a.example", "b.example"]
short-name-mode = "` + mode + `"
[aliases]
"web" = "c.example/lib/web"
`
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return &types.SystemContext{SystemRegistriesConfPath: p, SystemRegistriesConfDirPath: dir + "/none"}
	}
	for _, c := range []struct {
		mode, name, want string // want: candidates joined by space, or "error"
	}{
		{"permissive", "busybox", "a.example/busybox:latest b.example/busybox:latest"},
		{"disabled", "busybox:1.2", "a.example/busybox:1.2 b.example/busybox:1.2"},
		{"enforcing", "busybox", "error"},
		{"enforcing", "web:2", "c.example/lib/web:2"},
		{"enforcing", "web", "c.example/lib/web:latest"},
		{"enforcing", "quay.io/x/y", "quay.io/x/y:latest"},
		{"enforcing", "docker.io/alpine", "docker.io/library/alpine:latest"},
		{"enforcing", "localhost/img:1", "localhost/img:1"},
		{"enforcing", "Bad:Name", "error"},
	} {
		got, err := resolvePull(conf(c.mode), c.name)
		var s []string
		for _, n := range got {
			s = append(s, n.String())
		}
		out := strings.Join(s, " ")
		if err != nil {
			out = "error"
		}
		if out != c.want {
			t.Errorf("%s %q: %q (%v), want %q", c.mode, c.name, out, err, c.want)
		}
	}
}
