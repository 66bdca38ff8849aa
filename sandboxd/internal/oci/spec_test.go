package oci

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func baseInput() Input {
	return Input{
		ID:          "c1",
		Pod:         &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p"}},
		Container:   &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}},
		Image:       ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"cmd"}, Env: []string{"A=1", "PATH=/bin"}},
		Rootfs:      "/rootfs",
		Hostname:    "pod",
		Net:         NS{Mode: NSPath, Path: "/run/netns/x"},
		IPC:         NS{Mode: NSPath, Path: "/pod/ipcns"},
		UTS:         NS{Mode: NSPath, Path: "/pod/utsns"},
		ShmPath:     "/pod/shm",
		ResolvConf:  "/pod/resolv.conf",
		Bounding:    FromMask((1<<41 - 1) &^ (1 << 24)), // everything but CAP_SYS_RESOURCE
		DefaultCaps: CapSet{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		OOM:         OOMPolicy{Current: -500, CanLower: false},
	}
}

func TestArgsKubernetesRules(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"e"}, Cmd: []string{"c"}}
	for _, tc := range []struct {
		cmd, args, want []string
	}{
		{nil, nil, []string{"e", "c"}},
		{nil, []string{"a"}, []string{"e", "a"}},
		{[]string{"x"}, nil, []string{"x"}},
		{[]string{"x"}, []string{"a"}, []string{"x", "a"}},
	} {
		got, err := Args(img, tc.cmd, tc.args)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("cmd %v args %v: got %v %v, want %v", tc.cmd, tc.args, got, err, tc.want)
		}
	}
	if _, err := Args(ImageConfig{}, nil, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no command: %v", err)
	}
}

func TestBuildDefaults(t *testing.T) {
	in := baseInput()
	in.Container.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte("2")}, {Key: "B", Value: []byte("3")}}
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, []string{"/entry", "cmd"}) {
		t.Errorf("args %v", s.Process.Args)
	}
	if !slices.Equal(s.Process.Env, []string{"A=2", "PATH=/bin", "B=3"}) {
		t.Errorf("env %v", s.Process.Env)
	}
	if !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}) {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	ns := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		ns[n.Type] = n.Path
	}
	if ns[specs.NetworkNamespace] != "/run/netns/x" || ns[specs.IPCNamespace] != "/pod/ipcns" || ns[specs.UTSNamespace] != "/pod/utsns" {
		t.Errorf("namespaces %v", s.Linux.Namespaces)
	}
	if _, ok := ns[specs.PIDNamespace]; !ok {
		t.Error("no pid namespace")
	}
	if s.Linux.Seccomp != nil {
		t.Error("seccomp without a profile asked: CRI default is unconfined")
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Error("no masked/readonly paths")
	}
	dst := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		dst[m.Destination] = m
	}
	if dst["/dev/shm"].Source != "/pod/shm" || dst["/etc/resolv.conf"].Source != "/pod/resolv.conf" {
		t.Errorf("mounts %v", s.Mounts)
	}
	if s.Process.Cwd != "/" || s.Hostname != "pod" {
		t.Errorf("cwd %q hostname %q", s.Process.Cwd, s.Hostname)
	}
}

func TestCapabilities(t *testing.T) {
	in := baseInput()
	in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}, DropCapabilities: []string{"KILL"}},
	}}
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	caps := CapSet(s.Process.Capabilities.Bounding)
	if !caps.Has("CAP_SYS_ADMIN") || caps.Has("CAP_KILL") || caps.Has("CAP_SYS_RESOURCE") {
		t.Errorf("ALL minus KILL: %v", caps)
	}
	// An explicit capability the runtime does not hold is a clear error.
	in.Container.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("SYS_RESOURCE not held: %v", err)
	}
	in.Container.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NOT_A_CAP"}}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown cap: %v", err)
	}
	// Privileged: the bounding set, no seccomp, no masks, all devices.
	in.Container.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{Privileged: true,
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}
	in.HostDevices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	s, err = Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Process.Capabilities.Bounding) != len(in.Bounding) || s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || len(s.Linux.Devices) != 1 {
		t.Errorf("privileged: caps %d seccomp %v masked %v devices %v", len(s.Process.Capabilities.Bounding), s.Linux.Seccomp, s.Linux.MaskedPaths, s.Linux.Devices)
	}
}

func TestNonRootHasNoEffectiveCaps(t *testing.T) {
	in := baseInput()
	in.User = User{UID: 1000, GID: 1000}
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Process.Capabilities.Effective) != 0 || len(s.Process.Capabilities.Bounding) == 0 {
		t.Errorf("non-root caps %+v", s.Process.Capabilities)
	}
}

func TestOOMScoreAdjClamp(t *testing.T) {
	// Without CAP_SYS_RESOURCE a value below the current one is clamped.
	if got := ClampOOM(-998, OOMPolicy{Current: -500}); got != -500 {
		t.Errorf("no CAP_SYS_RESOURCE: got %d", got)
	}
	if got := ClampOOM(300, OOMPolicy{Current: -500}); got != 300 {
		t.Errorf("higher value: got %d", got)
	}
	// With it, the value goes through.
	if got := ClampOOM(-998, OOMPolicy{Current: -500, CanLower: true}); got != -998 {
		t.Errorf("CAP_SYS_RESOURCE: got %d", got)
	}
	in := baseInput()
	in.Container.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{OomScoreAdj: -998}}
	s, err := Build(in)
	if err != nil || *s.Process.OOMScoreAdj != -500 {
		t.Fatalf("spec oom_score_adj %v %v", s.Process.OOMScoreAdj, err)
	}
}

func TestSeccompProfiles(t *testing.T) {
	in := baseInput()
	sc := &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}
	in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sc}
	s, err := Build(in)
	if err != nil || s.Linux.Seccomp == nil || !slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "mount") {
		t.Fatalf("RuntimeDefault: %+v %v", s.Linux.Seccomp, err)
	}
	sc.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
	s, _ = Build(in)
	if slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "mount") {
		t.Error("CAP_SYS_ADMIN container still denied mount")
	}
	sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "relative.json"}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("relative localhost: %v", err)
	}
}

func TestMountsAndSysctls(t *testing.T) {
	in := baseInput()
	in.Container.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: "/host/data", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/etc/resolv.conf", HostPath: "/kubelet/resolv.conf"},
	}
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == "/etc/resolv.conf" {
			n++
			if m.Source != "/kubelet/resolv.conf" {
				t.Errorf("resolv.conf from %s", m.Source)
			}
		}
		if m.Destination == "/data" && (!slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rslave")) {
			t.Errorf("/data options %v", m.Options)
		}
	}
	if n != 1 || s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("resolv.conf mounts %d, rootfs propagation %q", n, s.Linux.RootfsPropagation)
	}
	in.Container.Mounts = []*runtimeapi.Mount{{ContainerPath: "rel", HostPath: "/x"}}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("relative container path: %v", err)
	}
	if err := ValidateSysctls(map[string]string{"kernel.shmmax": "1", "net.ipv4.ip_forward": "1"}); err != nil {
		t.Error(err)
	}
	if err := ValidateSysctls(map[string]string{"kernel.panic": "1"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("kernel.panic: %v", err)
	}
	in.Container.Mounts = nil
	in.Net = NS{Mode: NSHost}
	in.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("net sysctl with host network: %v", err)
	}
}

func TestAppArmor(t *testing.T) {
	in := baseInput()
	in.Container.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		Apparmor: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "localhost/my-profile"}}}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("apparmor profile without AppArmor: %v", err)
	}
	in.AppArmorEnabled = true
	s, err := Build(in)
	if err != nil || s.Process.ApparmorProfile != "my-profile" {
		t.Fatalf("apparmor profile %q %v", s.Process.ApparmorProfile, err)
	}
	in.Container.Linux.SecurityContext.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	in.AppArmorEnabled = false
	if _, err := Build(in); err != nil {
		t.Fatalf("RuntimeDefault without AppArmor must pass: %v", err)
	}
	in.Container.Linux.SecurityContext.SelinuxOptions = &runtimeapi.SELinuxOption{Type: "container_t"}
	if _, err := Build(in); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("selinux without SELinux: %v", err)
	}
}

// Recursive read-only mounts become the shim's createContainer hook, or are
// refused when the runtime has none.
func TestRecursiveReadOnlyHook(t *testing.T) {
	in := baseInput()
	in.Container.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/", HostPath: "/srv", Readonly: true, RecursiveReadOnly: true},
		{ContainerPath: "/plain", HostPath: "/srv", Readonly: true}}
	if _, err := Build(in); !errdefs.IsNotImplemented(err) {
		t.Errorf("without a hook: %v, want not implemented", err)
	}
	in.RROHook = "/usr/bin/flotilla-shim"
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Hooks == nil || len(s.Hooks.CreateContainer) != 1 {
		t.Fatalf("hooks %+v", s.Hooks)
	}
	h := s.Hooks.CreateContainer[0]
	if h.Path != "/usr/bin/flotilla-shim" || strings.Join(h.Args, " ") != "flotilla-shim rro /rootfs /data" {
		t.Errorf("hook %+v", h)
	}
	in.Container.Mounts = append(in.Container.Mounts, &runtimeapi.Mount{ContainerPath: "/data/cache", HostPath: "/cache"})
	if _, err := Build(in); !errdefs.IsInvalidArgument(err) {
		t.Errorf("writable mount below a recursive read-only one: %v, want invalid argument", err)
	}
	in.Container.Mounts[2].Readonly = true
	if _, err := Build(in); err != nil {
		t.Errorf("read-only mount below a recursive read-only one: %v", err)
	}
	in.Container.Mounts[0].Readonly = false
	if _, err := Build(in); !errdefs.IsInvalidArgument(err) {
		t.Errorf("writable recursive read-only: %v, want invalid argument", err)
	}
}
