package cri

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMountsSecurityAndResources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	podID, pcfg := e.podWithLogs("features")
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("from host"), 0o644)
	missing := filepath.Join(t.TempDir(), "does", "not", "exist")
	cfg := ctrConfig("feat", "sleep", "1000")
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: host, Readonly: true},
		{ContainerPath: "/made", HostPath: missing},
	}
	cfg.Linux.SecurityContext.ReadonlyRootfs = true
	cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Fatalf("missing host path not created: %v", err)
	}
	if out, _ := e.execSync(id, "cat", "/data/f"); out != "from host" {
		t.Errorf("bind mount: %q", out)
	}
	if _, code := e.execSync(id, "sh", "-c", "echo x > /data/g"); code == 0 {
		t.Error("read-only mount is writable")
	}
	if _, code := e.execSync(id, "sh", "-c", "echo x > /root/x"); code == 0 {
		t.Error("read-only rootfs is writable")
	}
	if _, code := e.execSync(id, "sh", "-c", "echo x > /made/x"); code != 0 {
		t.Error("created mount is not writable")
	}
	if out, _ := e.execSync(id, "grep", "^Seccomp:", "/proc/self/status"); !strings.HasSuffix(out, "2") {
		t.Errorf("RuntimeDefault seccomp not applied: %q", out)
	}
	if out, _ := e.execSync(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); out != "67108864" {
		t.Errorf("memory limit %q", out)
	}
	// UpdateContainerResources changes the live cgroup and the status.
	if _, err := e.svc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20}}); err != nil {
		t.Fatal(err)
	}
	if out, _ := e.execSync(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); out != "134217728" {
		t.Errorf("memory limit after update %q", out)
	}
	if got := e.status(id).GetResources().GetLinux().GetMemoryLimitInBytes(); got != 128<<20 {
		t.Errorf("status resources %d", got)
	}
	// The target PID namespace: a second container sees the first's processes.
	peek := ctrConfig("peek", "sleep", "1001")
	peek.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: id}
	pid := e.create(podID, pcfg, peek)
	e.startCtr(pid)
	if out, _ := e.execSync(pid, "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "sleep") || !strings.Contains(out, "1000") {
		t.Errorf("target pid ns: pid 1 is %q", out)
	}
	// Bad input changes nothing.
	bad := ctrConfig("bad", "true")
	bad.Mounts = []*runtimeapi.Mount{{ContainerPath: "rel", HostPath: host}}
	if _, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("relative mount: %v", err)
	}
	bad = ctrConfig("bad2", "true")
	bad.LogPath = "../../escape.log"
	if _, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("escaping log path: %v", err)
	}
	if _, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "nope", Config: ctrConfig("x", "true")}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown pod: %v", err)
	}
	if n := len(e.svc.listContainers(nil)); n != 2 {
		t.Errorf("%d containers after bad creates", n)
	}
}

func TestReopenLogAndExecStdin(t *testing.T) {
	e := newEnv(t)
	sock := e.serve()
	ctx := context.Background()
	podID, pcfg := e.podWithLogs("reopen")
	id := e.create(podID, pcfg, ctrConfig("talker", "sh", "-c", "while true; do echo line; sleep 0.05; done"))
	e.startCtr(id)
	logPath := e.status(id).LogPath
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	// The reopened file exists and gets new lines.
	e.execSync(id, "sleep", "0.3")
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal("no new log file after reopen:", err)
	}
	line, _ := bufio.NewReader(f).ReadString('\n')
	f.Close()
	if !strings.HasSuffix(line, " stdout F line\n") {
		t.Fatalf("reopened log: %q", line)
	}
	// Interactive exec with stdin through the streaming server.
	cmd := exec.Command(crictlPath(t), "--runtime-endpoint", "unix://"+sock, "exec", "-i", id, "sh", "-c", "read x; echo got $x")
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "got hello" {
		t.Fatalf("exec -i: %q %v", out, err)
	}
	// Non-zero exit codes come back through the stream (crictl prints them).
	cmd = exec.Command(crictlPath(t), "--runtime-endpoint", "unix://"+sock, "exec", id, "sh", "-c", "exit 5")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "command terminated with exit code 5") {
		t.Fatalf("exec exit code: %v: %s", err, msg)
	}
}

func TestAttachStdin(t *testing.T) {
	e := newEnv(t)
	sock := e.serve()
	podID, pcfg := e.podWithLogs("attach")
	cfg := ctrConfig("cat", "cat")
	cfg.Stdin, cfg.StdinOnce = true, true
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	cmd := exec.Command(crictlPath(t), "--runtime-endpoint", "unix://"+sock, "attach", "-i", id)
	cmd.Stdin = strings.NewReader("through attach\n")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "through attach") {
		t.Fatalf("attach: %q %v", out, err)
	}
	// stdin_once: the container's stdin closed with the attach, cat exits.
	if st := e.waitExit(id); st.ExitCode != 0 {
		t.Fatalf("after attach: exit %d", st.ExitCode)
	}
}

// The directories the runtime makes for a mount the image has no place for
// are open to every user, as the service account token's
// /var/run/secrets/kubernetes.io/serviceaccount must be for a container that
// does not run as root (the shim's own umask 077 once made them 0700).
func TestMountPointsOpenToNonRootUser(t *testing.T) {
	e := newEnv(t)
	podID, pcfg := e.podWithLogs("nonroot")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "token"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := ctrConfig("nonroot", "sleep", "1000")
	cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/not/in/image/serviceaccount", HostPath: host, Readonly: true}}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	if out, code := e.execSync(id, "cat", "/not/in/image/serviceaccount/token"); code != 0 || out != "secret" {
		t.Errorf("uid 1000 reading the mounted file: %q, exit %d", out, code)
	}
	out, _ := e.execSync(id, "ls", "-ld", "/not", "/not/in", "/not/in/image")
	if lines := strings.Split(out, "\n"); len(lines) != 3 {
		t.Errorf("ls -ld of the made directories: %q", out)
	} else {
		for _, l := range lines {
			if !strings.HasPrefix(l, "drwxr-xr-x") {
				t.Errorf("made directory %q, want mode 755", l)
			}
		}
	}
}

// Status tells the kubelet what the runtime supports; requests for what it
// does not are refused, not half done; mount options are applied.
func TestRuntimeFeatures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st, err := e.svc.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if f := st.GetFeatures(); !f.GetSupplementalGroupsPolicy() || !f.GetMountOptions() {
		t.Errorf("runtime features %v", f)
	}
	names := map[string]bool{}
	for _, h := range st.GetRuntimeHandlers() {
		names[h.GetName()] = true
		if h.GetFeatures().GetUserNamespaces() || !h.GetFeatures().GetRecursiveReadOnlyMounts() {
			t.Errorf("handler %q features %v: want recursive read-only mounts (runc) and no user namespaces", h.GetName(), h.GetFeatures())
		}
	}
	for _, h := range append([]string{""}, e.cfg.Handlers()...) {
		if !names[h] {
			t.Errorf("handler %q not in Status: %v", h, st.GetRuntimeHandlers())
		}
	}

	// A pod in a user namespace of its own is refused; the node's is the default.
	userns := podConfig("userns")
	userns.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
		Uids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}}, Gids: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}}}
	if _, err := e.svc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: userns}); !errdefs.IsNotImplemented(err) {
		t.Errorf("pod with its own user namespace: %v, want not implemented", err)
	}
	if n := len(e.svc.listPods(nil)); n != 0 {
		t.Fatalf("%d pods after a refused one", n)
	}
	podID, pcfg := e.podWithLogs("features")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "run"), []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	idmapped := ctrConfig("refused", "true")
	idmapped.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: host, UidMappings: []*runtimeapi.IDMapping{{HostId: 1000, Length: 1}}}}
	if _, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: idmapped, SandboxConfig: pcfg}); !errdefs.IsNotImplemented(err) {
		t.Errorf("id-mapped mount: %v, want not implemented", err)
	}
	for name, m := range map[string]*runtimeapi.Mount{
		"writable recursive read-only": {ContainerPath: "/data", HostPath: host, RecursiveReadOnly: true},
		"recursive read-only with propagation": {ContainerPath: "/data", HostPath: host, Readonly: true, RecursiveReadOnly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	} {
		cfg := ctrConfig("refused", "true")
		cfg.Mounts = []*runtimeapi.Mount{m}
		if _, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pcfg}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s mount: %v, want invalid argument", name, err)
		}
	}
	bad := ctrConfig("bad-option", "true")
	bad.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: host, MountOptions: []string{"noexec", "suid"}}}
	if _, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: bad, SandboxConfig: pcfg}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unknown mount option: %v, want invalid argument", err)
	}
	if n := len(e.svc.listContainers(nil)); n != 0 {
		t.Fatalf("%d containers after refused creates", n)
	}

	// A mount below the host directory: read-only in a recursive read-only
	// mount, writable in a plain read-only one.
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	cfg := ctrConfig("options", "sleep", "1000")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/noexec", HostPath: host, MountOptions: []string{"noexec", "nosuid", "nodev"}},
		{ContainerPath: "/exec", HostPath: host},
		{ContainerPath: "/rro", HostPath: host, Readonly: true, RecursiveReadOnly: true},
		{ContainerPath: "/ro", HostPath: host, Readonly: true}}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	if out, code := e.execSync(id, "/exec/run"); code != 0 || out != "ran" {
		t.Errorf("running from a plain bind mount: %q, exit %d", out, code)
	}
	if _, code := e.execSync(id, "sh", "-c", "/noexec/run"); code == 0 {
		t.Error("a binary ran from a noexec mount")
	}
	if out, _ := e.execSync(id, "grep", " /noexec ", "/proc/self/mounts"); !strings.Contains(out, "nosuid") || !strings.Contains(out, "nodev") || !strings.Contains(out, "noexec") {
		t.Errorf("/noexec mounted %q", out)
	}
	if _, code := e.execSync(id, "sh", "-c", "echo > /rro/sub/x"); code == 0 {
		t.Error("a mount below a recursive read-only mount is writable")
	}
	if _, code := e.execSync(id, "sh", "-c", "echo > /ro/sub/y"); code != 0 {
		t.Error("a mount below a plain read-only mount is not writable (the test shows nothing)")
	}
	if _, code := e.execSync(id, "sh", "-c", "echo > /rro/z"); code == 0 {
		t.Error("a recursive read-only mount is writable")
	}
}
