package registry

// The test images behave as critest needs (CRITEST.md): each is unpacked with umoci and run with
// real runc, as root.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	imagesOnce sync.Once
	imagesDir  string
	imagesErr  error
)

func testImages(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running the test images needs root")
	}
	for _, bin := range []string{"runc", "umoci"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed: %v", bin, err)
		}
	}
	imagesOnce.Do(func() { imagesDir, imagesErr = BuildImages("") })
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	return imagesDir
}

type container struct {
	t        *testing.T
	runcRoot string
	bundle   string
	id       string
}

// newContainer unpacks image name:tag into a bundle; edit changes its config.json.
func newContainer(t *testing.T, name, tag string, edit func(cfg map[string]any)) *container {
	t.Helper()
	dir := testImages(t)
	tmp := t.TempDir()
	c := &container{t: t, runcRoot: filepath.Join(tmp, "runc"), bundle: filepath.Join(tmp, "bundle")}
	b := make([]byte, 6)
	rand.Read(b)
	c.id = "flt-img-" + name + "-" + hex.EncodeToString(b)
	if out, err := exec.Command("umoci", "unpack", "--image", filepath.Join(dir, name)+":"+tag, c.bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack %s:%s: %v: %s", name, tag, err, out)
	}
	path := filepath.Join(c.bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["process"].(map[string]any)["terminal"] = false
	if edit != nil {
		edit(cfg)
	}
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("runc", "--root", c.runcRoot, "delete", "--force", c.id).Run()
	})
	return c
}

func setArgs(args ...string) func(map[string]any) {
	return func(cfg map[string]any) {
		a := make([]any, len(args))
		for i, s := range args {
			a[i] = s
		}
		cfg["process"].(map[string]any)["args"] = a
	}
}

func (c *container) runc(args ...string) *exec.Cmd {
	return exec.Command("runc", append([]string{"--root", c.runcRoot}, args...)...)
}

// run runs the container to completion and returns its output.
func (c *container) run() string {
	c.t.Helper()
	cmd := c.runc("run", "--bundle", c.bundle, c.id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("runc run %s: %v: %s", c.id, err, out.String())
	}
	return out.String()
}

// start runs the container detached, its output going to the returned file.
func (c *container) start() string {
	c.t.Helper()
	logPath := filepath.Join(filepath.Dir(c.bundle), "stdout.log")
	log, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	cmd := c.runc("run", "--detach", "--bundle", c.bundle, c.id)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		c.t.Fatalf("runc run -d %s: %v: %s", c.id, err, out)
	}
	return logPath
}

func (c *container) exec(args ...string) (string, error) {
	out, err := c.runc(append([]string{"exec", c.id}, args...)...).CombinedOutput()
	return string(out), err
}

// waitFor runs sh -c script in the container until it succeeds (a server coming up).
func (c *container) waitFor(script string) string {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := c.exec("sh", "-c", script)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %v: %s", script, err, out)
		}
		time.Sleep(50 * time.Millisecond) // polling for the server to listen
	}
}

func TestImageBusybox(t *testing.T) {
	c := newContainer(t, "busybox", "1.29-2", setArgs("sh", "-c", `
		[ /bin/ls -ef /bin/busybox ] && echo ls-is-busybox
		[ -L /bin/ls ] && echo ls-is-symlink
		echo "www-data=$(grep -c ^www-data: /etc/passwd)"
		sleep 1000 &
		until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done # until the child has exec'd sleep
		echo "sleep=$!"
		echo "pgrep=$(pgrep sleep)"
		echo "ipcs=$(ipcs -m | grep -c 'Shared Memory')"
		kill $!`))
	out := c.run()
	for _, want := range []string{"ls-is-busybox\n", "www-data=1\n", "ipcs=1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ls-is-symlink") {
		t.Errorf("/bin/ls is a symlink:\n%s", out)
	}
	var sleepPid, pgrepPid string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "sleep="); ok {
			sleepPid = v
		}
		if v, ok := strings.CutPrefix(l, "pgrep="); ok {
			pgrepPid = v
		}
	}
	if sleepPid == "" || sleepPid != pgrepPid {
		t.Errorf("pgrep sleep printed %q, the sleep is %q:\n%s", pgrepPid, sleepPid, out)
	}
}

// MaskedPaths on /bin/ls masks ls only: busybox does not run the applet in-process.
func TestImageBusyboxMaskedLs(t *testing.T) {
	c := newContainer(t, "busybox", "1.29-2", func(cfg map[string]any) {
		setArgs("sh", "-c", `ls / >/dev/null 2>&1; echo "ls=$?"; cat /etc/passwd >/dev/null; echo "cat=$?"`)(cfg)
		linux := cfg["linux"].(map[string]any)
		linux["maskedPaths"] = append(linux["maskedPaths"].([]any), "/bin/ls")
	})
	out := c.run()
	if strings.Contains(out, "ls=0") || !strings.Contains(out, "cat=0") {
		t.Errorf("with /bin/ls masked, want ls to fail and cat to work:\n%s", out)
	}
}

func TestImageNginx(t *testing.T) {
	for _, tc := range []struct{ name, tag, port string }{
		{"nginx", "1.14-2", "80"},
		{"hostnet-nginx", "latest", "12003"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, tc.name, tc.tag, nil)
			c.start()
			pid := c.waitFor("cat /var/run/nginx.pid")
			if strings.TrimSpace(pid) != "1" {
				t.Errorf("/var/run/nginx.pid = %q, want 1 (the server is pid 1)", pid)
			}
			if out, _ := c.exec("pidof", "nginx"); strings.TrimSpace(out) != "1" {
				t.Errorf("pidof nginx = %q, want 1", out)
			}
			if out, _ := c.exec("cat", "/proc/1/cmdline"); !strings.Contains(out, "master process") {
				t.Errorf("pid 1's cmdline %q lacks \"master process\"", out)
			}
			page := c.waitFor("ip link set lo up && wget -qO- http://127.0.0.1:" + tc.port + "/")
			if !strings.Contains(page, "nginx") {
				t.Errorf("page on port %s: %q", tc.port, page)
			}
		})
	}
}

func TestImageHttpd(t *testing.T) {
	c := newContainer(t, "httpd", "2.4.39-4", nil)
	logPath := c.start()
	page := c.waitFor("ip link set lo up && wget -qO- http://127.0.0.1:80/")
	if !strings.Contains(page, "It works!") {
		t.Errorf("page on port 80: %q", page)
	}
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), "httpd") {
		t.Errorf("log lacks httpd: %q", log)
	}
}

func TestImageNonewprivs(t *testing.T) {
	for _, tc := range []struct {
		nnp  bool
		want string
	}{{true, "Effective uid: 1000\n"}, {false, "Effective uid: 0\n"}} {
		c := newContainer(t, "nonewprivs", "1.3", func(cfg map[string]any) {
			p := cfg["process"].(map[string]any)
			p["noNewPrivileges"] = tc.nnp
			p["user"] = map[string]any{"uid": 1000, "gid": 1000}
		})
		if out := c.run(); out != tc.want {
			t.Errorf("noNewPrivileges=%v: output %q, want %q", tc.nnp, out, tc.want)
		}
	}
}

func TestImagePause(t *testing.T) {
	for _, tag := range []string{"3.10", "3.9"} {
		c := newContainer(t, "pause-"+tag, tag, nil)
		c.start()
		out, err := c.runc("state", c.id).Output()
		if err != nil || !strings.Contains(string(out), `"status": "running"`) {
			t.Errorf("pause %s: runc state: %v: %s", tag, err, out)
		}
		if err := c.runc("kill", c.id, "TERM").Run(); err != nil {
			t.Errorf("pause %s: kill: %v", tag, err)
		}
	}
}
