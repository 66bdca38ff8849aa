// Package oci builds OCI runtime specs (runtime-spec types) from the CRI
// config, the image config and the pod's namespaces. It is pure: every host
// fact (capabilities, devices, profiles) comes in through Input.
package oci

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageConfig is the part of an OCI image config sandboxd uses.
type ImageConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	StopSignal string   `json:"StopSignal,omitempty"`
}

// ParseImageConfig decodes an OCI image config (image-spec v1 Image JSON).
func ParseImageConfig(data []byte) (ImageConfig, error) {
	var img struct {
		Config ImageConfig `json:"config"`
	}
	if len(data) == 0 {
		return ImageConfig{}, nil
	}
	if err := json.Unmarshal(data, &img); err != nil {
		return ImageConfig{}, fmt.Errorf("image config: %w", err)
	}
	return img.Config, nil
}

// NSMode says where a container's namespace of one kind comes from.
type NSMode int

// Namespace modes.
const (
	NSNew  NSMode = iota // a new namespace for the container
	NSHost               // the host's (no namespace entry)
	NSPath               // join the namespace at Path
)

// NS is one namespace choice.
type NS struct {
	Mode NSMode
	Path string
}

// OOMPolicy says how oom_score_adj may be set.
type OOMPolicy struct {
	// Current is sandboxd's own oom_score_adj: without CAP_SYS_RESOURCE a
	// process cannot go below it.
	Current int
	// CanLower is true when sandboxd holds CAP_SYS_RESOURCE.
	CanLower bool
}

// Input is everything that goes into one container's spec.
type Input struct {
	ID        string
	Pod       *runtimeapi.PodSandboxConfig
	Container *runtimeapi.ContainerConfig
	Image     ImageConfig
	Rootfs    string
	User      User
	Hostname  string

	Net, IPC, UTS, PID NS
	// ShmPath is the pod's /dev/shm (bound into the container); empty uses
	// a private tmpfs.
	ShmPath string
	// Files bound into the container unless a CRI mount covers them.
	ResolvConf, Hosts, HostnameFile string
	CgroupsPath                     string
	Sysctls                         map[string]string

	Bounding    CapSet // what sandboxd holds: "ALL" and privileged get these
	DefaultCaps CapSet
	// RuntimeDefault builds the RuntimeDefault seccomp profile for the
	// container's capabilities; nil uses DefaultSeccomp.
	RuntimeDefault func(CapSet) *specs.LinuxSeccomp
	// LoadLocalhost loads a Localhost seccomp profile from an absolute path.
	LoadLocalhost func(path string) (*specs.LinuxSeccomp, error)
	OOM           OOMPolicy
	// HostDevices are all host devices (privileged containers get them).
	HostDevices []specs.LinuxDevice
	// Device looks up one host device for a CRI Device.
	Device          func(hostPath string) (specs.LinuxDevice, error)
	AppArmorEnabled bool
	SELinuxEnabled  bool
	// RROHook is the flotilla-shim binary, run as the createContainer hook
	// `flotilla-shim rro` that makes recursive read-only mounts so (runc 1.1
	// has no "rro" option); empty refuses them (Unimplemented).
	RROHook string
}

// Default masked and read-only paths (as the kubelet and runc expect).
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

func invalid(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

// Build returns the container's OCI spec.
func Build(in Input) (*specs.Spec, error) {
	c := in.Container
	lin := c.GetLinux()
	sc := lin.GetSecurityContext()
	privileged := sc.GetPrivileged()

	args, err := Args(in.Image, c.GetCommand(), c.GetArgs())
	if err != nil {
		return nil, err
	}
	cwd := c.GetWorkingDir()
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, invalid("working_dir %q is not absolute", cwd)
	}
	caps, err := Capabilities(in.DefaultCaps, in.Bounding, sc.GetCapabilities(), privileged)
	if err != nil {
		return nil, err
	}
	proc := &specs.Process{
		Terminal: c.GetTty(),
		User: specs.User{UID: in.User.UID, GID: in.User.GID, AdditionalGids: in.User.AdditionalGids,
			Umask: nil},
		Args:            args,
		Env:             Env(in.Image.Env, c.GetEnvs()),
		Cwd:             cwd,
		NoNewPrivileges: sc.GetNoNewPrivs(),
		Capabilities: &specs.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps,
		},
	}
	if in.User.UID == 0 || privileged {
		// Root keeps its capabilities; others get them only via file caps
		// (the Kubernetes semantics), so effective/permitted stay for root.
	} else {
		proc.Capabilities.Effective, proc.Capabilities.Permitted = nil, nil
	}
	if res := lin.GetResources(); res != nil && res.OomScoreAdj != 0 {
		adj := ClampOOM(int(res.OomScoreAdj), in.OOM)
		proc.OOMScoreAdj = &adj
	}

	s := &specs.Spec{
		Version:  specs.Version,
		Process:  proc,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: sc.GetReadonlyRootfs()},
		Hostname: in.Hostname,
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type": "container",
			"io.kubernetes.cri.sandbox-name":   in.Pod.GetMetadata().GetName(),
		},
		Linux: &specs.Linux{
			CgroupsPath: in.CgroupsPath,
			Sysctl:      in.Sysctls,
			Resources:   &specs.LinuxResources{},
		},
	}
	if in.UTS.Mode == NSHost {
		s.Hostname = ""
	}
	for k, v := range c.GetAnnotations() {
		s.Annotations[k] = v
	}

	if err := namespaces(s, in); err != nil {
		return nil, err
	}
	if err := mounts(s, in, privileged); err != nil {
		return nil, err
	}
	if err := devices(s, in, privileged); err != nil {
		return nil, err
	}
	if err := Resources(s.Linux.Resources, lin.GetResources()); err != nil {
		return nil, err
	}
	if privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	} else {
		s.Linux.MaskedPaths = pick(sc.GetMaskedPaths(), DefaultMaskedPaths)
		s.Linux.ReadonlyPaths = pick(sc.GetReadonlyPaths(), DefaultReadonlyPaths)
		if s.Linux.Seccomp, err = seccomp(in, sc, CapSet(caps)); err != nil {
			return nil, err
		}
	}
	if err := mac(in, sc); err != nil {
		return nil, err
	}
	if in.AppArmorEnabled && !privileged {
		if a := sc.GetApparmor(); a != nil && a.ProfileType == runtimeapi.SecurityProfile_Localhost {
			s.Process.ApparmorProfile = strings.TrimPrefix(a.LocalhostRef, "localhost/")
		} else if p := sc.GetApparmorProfile(); strings.HasPrefix(p, "localhost/") {
			s.Process.ApparmorProfile = strings.TrimPrefix(p, "localhost/")
		}
	}
	return s, nil
}

func pick(given, def []string) []string {
	if len(given) > 0 {
		return given
	}
	return append([]string(nil), def...)
}

// Args computes the process arguments the Kubernetes way: command replaces
// the entrypoint, args replace the cmd; a command alone drops the image's
// cmd.
func Args(img ImageConfig, command, args []string) ([]string, error) {
	var out []string
	if len(command) > 0 {
		out = append(append(out, command...), args...)
	} else {
		out = append(out, img.Entrypoint...)
		if len(args) > 0 {
			out = append(out, args...)
		} else {
			out = append(out, img.Cmd...)
		}
	}
	if len(out) == 0 {
		return nil, invalid("no command specified: neither the container config nor the image has one")
	}
	return out, nil
}

// Env merges the image's environment with the CRI's (which wins) and adds
// a default PATH.
func Env(image []string, cri []*runtimeapi.KeyValue) []string {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for _, e := range image {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	for _, kv := range cri {
		set(kv.GetKey(), string(kv.GetValue()))
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// Capabilities computes a container's capability set: the default set plus
// add minus drop; "ALL" in add grants the bounding set, in drop removes all.
// Privileged containers get the bounding set.
func Capabilities(def, bounding CapSet, c *runtimeapi.Capability, privileged bool) ([]string, error) {
	if privileged {
		return append([]string(nil), bounding...), nil
	}
	set := map[string]bool{}
	for _, d := range def {
		set[d] = true
	}
	for _, a := range c.GetAddCapabilities() {
		n, ok := NormalizeCap(a)
		if !ok {
			return nil, invalid("unknown capability %q", a)
		}
		if n == "ALL" {
			for _, b := range bounding {
				set[b] = true
			}
			continue
		}
		set[n] = true
	}
	for _, d := range c.GetDropCapabilities() {
		n, ok := NormalizeCap(d)
		if !ok {
			return nil, invalid("unknown capability %q", d)
		}
		if n == "ALL" {
			set = map[string]bool{}
			// Adds still apply after a drop of ALL (Kubernetes semantics).
			for _, a := range c.GetAddCapabilities() {
				if an, _ := NormalizeCap(a); an != "ALL" {
					set[an] = true
				}
			}
			continue
		}
		delete(set, n)
	}
	out := []string{}
	for n := range set {
		if !bounding.Has(n) {
			return nil, fmt.Errorf("capability %s is not held by the runtime (bounding set): %w", n, errdefs.ErrFailedPrecondition)
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// ClampOOM returns the oom_score_adj to use: without CAP_SYS_RESOURCE a
// value below the current one is raised to it (the kernel would refuse it).
func ClampOOM(want int, p OOMPolicy) int {
	if want < -1000 {
		want = -1000
	}
	if want > 1000 {
		want = 1000
	}
	if !p.CanLower && want < p.Current {
		return p.Current
	}
	return want
}

func namespaces(s *specs.Spec, in Input) error {
	add := func(t specs.LinuxNamespaceType, ns NS) {
		switch ns.Mode {
		case NSNew:
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
		case NSPath:
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: ns.Path})
		}
	}
	add(specs.PIDNamespace, in.PID)
	add(specs.NetworkNamespace, in.Net)
	add(specs.IPCNamespace, in.IPC)
	add(specs.UTSNamespace, in.UTS)
	add(specs.MountNamespace, NS{Mode: NSNew})
	for k := range in.Sysctls {
		if in.Net.Mode == NSHost && strings.HasPrefix(k, "net.") {
			return invalid("sysctl %q needs the pod's own network namespace (the pod uses the host's)", k)
		}
		if in.IPC.Mode == NSHost && ipcSysctl(k) {
			return invalid("sysctl %q needs the pod's own IPC namespace (the pod uses the host's)", k)
		}
	}
	return nil
}

func ipcSysctl(k string) bool {
	return strings.HasPrefix(k, "kernel.shm") || strings.HasPrefix(k, "kernel.msg") ||
		k == "kernel.sem" || strings.HasPrefix(k, "fs.mqueue.")
}

// ValidateSysctls accepts only namespaced sysctls.
func ValidateSysctls(m map[string]string) error {
	for k := range m {
		if !ipcSysctl(k) && !strings.HasPrefix(k, "net.") {
			return invalid("sysctl %q is not namespaced (allowed: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*)", k)
		}
		if strings.Contains(k, "..") || strings.ContainsAny(k, "/ ") && !strings.HasPrefix(k, "net.") {
			return invalid("sysctl %q: bad name", k)
		}
	}
	return nil
}

func mounts(s *specs.Spec, in Input, privileged bool) error {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgOpts = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
	}
	if in.Net.Mode == NSHost && !privileged {
		// sysfs cannot be mounted without a network namespace of our own.
		ms[4] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	if in.ShmPath != "" {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.ShmPath, Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	} else {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	cri := in.Container.GetMounts()
	covered := map[string]bool{}
	for _, m := range cri {
		covered[path.Clean(m.GetContainerPath())] = true
	}
	for dst, src := range map[string]string{"/etc/resolv.conf": in.ResolvConf, "/etc/hosts": in.Hosts, "/etc/hostname": in.HostnameFile} {
		if src != "" && !covered[dst] {
			opts := []string{"rbind", "rprivate"}
			if in.Container.GetLinux().GetSecurityContext().GetReadonlyRootfs() {
				opts = append(opts, "ro")
			}
			ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts})
		}
	}
	sort.SliceStable(ms[7:], func(i, j int) bool { return ms[7+i].Destination < ms[7+j].Destination })
	var rro []string
	for _, m := range cri {
		dst, src := m.GetContainerPath(), m.GetHostPath()
		if m.GetImage().GetImage() != "" {
			// sandboxd turns image volumes into bind mounts of their layers first.
			return fmt.Errorf("mount %q: image volume not mounted: %w", dst, errdefs.ErrInternal)
		}
		if !path.IsAbs(dst) {
			return invalid("mount container_path %q is not absolute", dst)
		}
		if !filepath.IsAbs(src) {
			return invalid("mount host_path %q is not absolute", src)
		}
		opts := []string{"rbind"}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			opts = append(opts, "rprivate")
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			opts = append(opts, "rslave")
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			opts = append(opts, "rshared")
			s.Linux.RootfsPropagation = "rshared"
		default:
			return invalid("mount %s: unknown propagation %v", dst, m.GetPropagation())
		}
		if m.GetPropagation() == runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER && s.Linux.RootfsPropagation == "" {
			s.Linux.RootfsPropagation = "rslave"
		}
		if m.GetReadonly() {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		opts = append(opts, m.GetMountOptions()...) // noexec, nodev, nosuid (sandboxd checks them)
		if m.GetRecursiveReadOnly() {
			// As the CRI says: only a read-only mount without propagation.
			if !m.GetReadonly() || m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return invalid("mount %s: recursive_read_only needs readonly and PROPAGATION_PRIVATE", dst)
			}
			rro = append(rro, path.Clean(dst))
		}
		// A CRI mount replaces a default one at the same destination.
		dst = path.Clean(dst)
		kept := ms[:0]
		for _, d := range ms {
			if d.Destination != dst {
				kept = append(kept, d)
			}
		}
		ms = append(kept, specs.Mount{Destination: dst, Type: "bind", Source: filepath.Clean(src), Options: opts})
	}
	s.Mounts = ms
	if len(rro) > 0 {
		if in.RROHook == "" {
			return fmt.Errorf("recursive read-only mounts %v are not supported by this runtime: %w", rro, errdefs.ErrNotImplemented)
		}
		// The hook runs after all mounts: one below a recursive read-only
		// mount would be made read-only with it (runc's own rro applies
		// before later mounts). A writable one there is refused instead.
		for _, m := range ms {
			for _, r := range rro {
				if m.Destination != r && strings.HasPrefix(m.Destination, r+"/") && !slices.Contains(m.Options, "ro") {
					return invalid("mount %s is writable below the recursive read-only mount %s", m.Destination, r)
				}
			}
		}
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		s.Hooks.CreateContainer = append(s.Hooks.CreateContainer,
			specs.Hook{Path: in.RROHook, Args: append([]string{"flotilla-shim", "rro", in.Rootfs}, rro...)})
	}
	return nil
}

func devices(s *specs.Spec, in Input, privileged bool) error {
	r := s.Linux.Resources
	r.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	if privileged {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		s.Linux.Devices = append(s.Linux.Devices, in.HostDevices...)
		return nil
	}
	for _, d := range in.Container.GetDevices() {
		if !filepath.IsAbs(d.GetHostPath()) || !path.IsAbs(d.GetContainerPath()) {
			return invalid("device %q → %q: paths must be absolute", d.GetHostPath(), d.GetContainerPath())
		}
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return invalid("device %s: permissions %q (want a mix of r, w, m)", d.GetHostPath(), perms)
		}
		if in.Device == nil {
			return invalid("device %s: no device lookup", d.GetHostPath())
		}
		dev, err := in.Device(d.GetHostPath())
		if err != nil {
			return invalid("device %s: %v", d.GetHostPath(), err)
		}
		dev.Path = d.GetContainerPath()
		s.Linux.Devices = append(s.Linux.Devices, dev)
		major, minor := dev.Major, dev.Minor
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms})
	}
	return nil
}

// Resources converts CRI resources into r (nil leaves r as is).
func Resources(r *specs.LinuxResources, c *runtimeapi.LinuxContainerResources) error {
	if c == nil {
		return nil
	}
	if c.CpuShares < 0 || c.CpuQuota < -1 || c.CpuPeriod < 0 || c.MemoryLimitInBytes < 0 {
		return invalid("resources: negative cpu_shares, cpu_quota, cpu_period or memory_limit_in_bytes")
	}
	cpu := &specs.LinuxCPU{}
	if c.CpuShares != 0 {
		v := uint64(c.CpuShares)
		cpu.Shares = &v
	}
	if c.CpuQuota != 0 {
		v := c.CpuQuota
		cpu.Quota = &v
	}
	if c.CpuPeriod != 0 {
		v := uint64(c.CpuPeriod)
		cpu.Period = &v
	}
	cpu.Cpus, cpu.Mems = c.CpusetCpus, c.CpusetMems
	if *cpu != (specs.LinuxCPU{}) {
		r.CPU = cpu
	}
	if c.MemoryLimitInBytes != 0 {
		v := c.MemoryLimitInBytes
		r.Memory = &specs.LinuxMemory{Limit: &v}
		if c.MemorySwapLimitInBytes != 0 {
			sw := c.MemorySwapLimitInBytes
			r.Memory.Swap = &sw
		}
	}
	r.HugepageLimits = nil
	for _, h := range c.HugepageLimits {
		r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.PageSize, Limit: h.Limit})
	}
	if len(c.Unified) > 0 {
		r.Unified = c.Unified
	}
	return nil
}

func seccomp(in Input, sc *runtimeapi.LinuxContainerSecurityContext, caps CapSet) (*specs.LinuxSeccomp, error) {
	prof := sc.GetSeccomp()
	if prof == nil {
		return nil, nil // the CRI default is Unconfined
	}
	switch prof.ProfileType {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if in.RuntimeDefault != nil {
			return in.RuntimeDefault(caps), nil
		}
		return DefaultSeccomp(caps), nil
	case runtimeapi.SecurityProfile_Localhost:
		p := prof.LocalhostRef
		if !filepath.IsAbs(p) {
			return nil, invalid("seccomp localhost profile %q is not an absolute path", p)
		}
		if in.LoadLocalhost == nil {
			return LoadSeccomp(p)
		}
		out, err := in.LoadLocalhost(p)
		if err != nil {
			return nil, invalid("seccomp localhost profile: %v", err)
		}
		return out, nil
	}
	return nil, invalid("unknown seccomp profile type %v", prof.ProfileType)
}

func mac(in Input, sc *runtimeapi.LinuxContainerSecurityContext) error {
	if a := sc.GetApparmor(); a != nil && a.ProfileType == runtimeapi.SecurityProfile_Localhost && !in.AppArmorEnabled {
		return fmt.Errorf("apparmor profile %q requested but AppArmor is not enabled on this host: %w", a.LocalhostRef, errdefs.ErrFailedPrecondition)
	}
	if p := sc.GetApparmorProfile(); p != "" && p != "runtime/default" && p != "unconfined" && !in.AppArmorEnabled {
		return fmt.Errorf("apparmor profile %q requested but AppArmor is not enabled on this host: %w", p, errdefs.ErrFailedPrecondition)
	}
	if o := sc.GetSelinuxOptions(); o != nil && (o.Type != "" || o.Level != "" || o.User != "" || o.Role != "") && !in.SELinuxEnabled {
		return fmt.Errorf("selinux options %v requested but SELinux is not enabled on this host: %w", o, errdefs.ErrFailedPrecondition)
	}
	return nil
}
