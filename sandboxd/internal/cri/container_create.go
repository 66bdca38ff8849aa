package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/metrics"
	imagev1 "flotilla.dev/proto/image/v1"
	"flotilla.dev/sandboxd/internal/oci"
	"flotilla.dev/sandboxd/internal/store"
	shimclient "flotilla.dev/shim/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateContainer creates a container in a ready pod: a rootfs from
// imaged, an OCI spec, and a shim that ran `runtime create`.
func (s *Service) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	if cfg.GetMetadata().GetName() == "" {
		return nil, fmt.Errorf("container metadata needs a name: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("container image is empty: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkImageVolumes(cfg.GetMounts()); err != nil {
		return nil, err
	}
	if err := checkMountFeatures(cfg.GetMounts()); err != nil {
		return nil, err
	}
	if err := checkUserns(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()); err != nil {
		return nil, err
	}
	p, err := s.lookupPod(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	podID := p.snapshot().ID
	res, existing, err := s.ctrNames.Reserve(ctx, ctrName(podID, cfg.GetMetadata()), ctrKey(podID, cfg))
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	if res == nil {
		return &runtimeapi.CreateContainerResponse{ContainerId: existing}, nil
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	// Holding the pod's op lock orders the create with StopPodSandbox: a
	// stop either sees the new container or the create sees a stopped pod.
	p.op.Lock()
	c, err := s.createContainer(cctx, p, cfg, false)
	p.op.Unlock()
	if err != nil {
		res.Done("", err)
		return nil, fmt.Errorf("create container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	res.Done(c.id, nil)
	s.publishContainer(c, "created")
	return &runtimeapi.CreateContainerResponse{ContainerId: c.id}, nil
}

// createContainer builds and creates one container (the pause container
// when infra is set).
func (s *Service) createContainer(ctx context.Context, p *sandbox, cfg *runtimeapi.ContainerConfig, infra bool) (_ *container, err error) {
	pod := p.snapshot()
	if pod.State != store.PodReady {
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", pod.ID, errdefs.ErrFailedPrecondition)
	}
	rt, ok := s.Config.Runtime(pod.RuntimeHandler)
	if !ok {
		return nil, fmt.Errorf("runtime handler %q is no longer configured: %w", pod.RuntimeHandler, errdefs.ErrFailedPrecondition)
	}
	logPath, err := containerLogPath(p.cfg.GetLogDirectory(), cfg.GetLogPath())
	if err != nil {
		return nil, err
	}
	id := newID()
	log := flog.From(ctx).With(flog.KeyPodID, pod.ID, flog.KeyContainerID, id)
	ph := metrics.StartPhases("create_container")
	defer ph.Done(log)
	bundle := filepath.Join(s.Config.RunRoot, "containers", id)
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	cleanups = append(cleanups, func() { _ = os.RemoveAll(bundle) })

	if s.Rootfs == nil {
		return nil, fmt.Errorf("container rootfs: imaged is not configured: %w", errdefs.ErrUnavailable)
	}
	created, rootfs, err := s.createMountedLayer(ctx, &imagev1.CreateRootfsRequest{ContainerId: id, Image: cfg.GetImage().GetImage(),
		PodId: pod.ID, Name: cfg.GetMetadata().GetName()}, log, &cleanups)
	if err != nil {
		return nil, fmt.Errorf("create rootfs from image %q: %w", cfg.GetImage().GetImage(), err)
	}
	ph.Mark("create_mount_rootfs")
	img, err := oci.ParseImageConfig(created.GetImage().GetConfigJson())
	if err != nil {
		return nil, err
	}
	// specCfg has the image volumes as bind mounts, keptCfg their image ids.
	specCfg, keptCfg, err := s.mountImageVolumes(ctx, id, pod.ID, cfg, log, &cleanups)
	if err != nil {
		return nil, err
	}
	if err := createHostPaths(specCfg.GetMounts()); err != nil {
		return nil, err
	}
	spec, err := s.buildSpec(p, &pod, id, specCfg, img, rootfs, infra)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("write spec: %w", err)
	}
	ph.Mark("spec")
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, fmt.Errorf("log directory: %w", err)
		}
	}
	sh, err := s.Shims.Spawn(ctx, shimclient.SpawnOptions{
		ID: id, Bundle: bundle, StateDir: filepath.Join(bundle, "shim"),
		Runtime: rt.Path, RuntimeRoot: rt.Root, LogPath: logPath,
		Terminal: cfg.GetTty(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
		ShimBinary: s.Config.ShimPath, RuntimeExecSync: rt.ExecSyncViaRuntime, RuntimeStart: rt.StartViaRuntime,
	})
	if err != nil {
		return nil, fmt.Errorf("create container with %s: %w", rt.Path, err)
	}
	ph.Mark("shim_spawn_runtime_create")
	cleanups = append(cleanups, func() {
		dctx, cancel := timeout(ctx, 30*time.Second)
		defer cancel()
		_ = sh.Kill(dctx, 9, true)
		_ = sh.Delete(dctx)
		_ = sh.Shutdown(dctx)
		_ = sh.Close()
	})

	rec := &store.Container{ID: id, PodID: pod.ID, State: store.ContainerCreated, CreatedAt: time.Now().UnixNano(),
		ImageID: created.GetImage().GetId(), ImageRef: imageRef(created.GetImage()), LogPath: logPath,
		Bundle: bundle, Infra: infra, StopSignal: img.StopSignal, NameKey: ctrKey(pod.ID, cfg),
		UID: spec.Process.User.UID, GID: spec.Process.User.GID, Groups: spec.Process.User.AdditionalGids}
	rec.Config, _ = marshal(keptCfg)
	if r := cfg.GetLinux().GetResources(); r != nil {
		rec.Resources, _ = marshal(r)
	}
	if err := s.Store.PutContainer(rec); err != nil {
		return nil, err
	}
	ph.Mark("store")
	c := newContainer(rec, keptCfg, sh)
	s.mu.Lock()
	s.ctrs[id] = c
	s.mu.Unlock()
	log.Info("container created", "name", cfg.GetMetadata().GetName(), flog.KeyImage, cfg.GetImage().GetImage())
	return c, nil
}

// imageRef is what ContainerStatus reports as image_ref: the image id, the
// same value PullImage returned and Image.id carries (issue 3).
func imageRef(img *imagev1.ImageInfo) string {
	return img.GetId()
}

// containerLogPath joins the pod's log directory and the container's log
// path, refusing paths that leave the directory.
func containerLogPath(dir, rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if dir == "" {
		return "", fmt.Errorf("log_path %q given but the pod has no log_directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	p := filepath.Join(dir, rel)
	if filepath.IsAbs(rel) || !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
		return "", fmt.Errorf("log_path %q escapes the pod's log directory: %w", rel, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// buildSpec gathers host and pod facts for oci.Build.
func (s *Service) buildSpec(p *sandbox, pod *store.Pod, id string, cfg *runtimeapi.ContainerConfig, img oci.ImageConfig, rootfs string, infra bool) (*specs.Spec, error) {
	sc := cfg.GetLinux().GetSecurityContext()
	user, err := oci.ResolveUser(rootfs, oci.UserRequest{
		RunAsUser: valuePtr(sc.GetRunAsUser()), RunAsUsername: sc.GetRunAsUsername(), RunAsGroup: valuePtr(sc.GetRunAsGroup()),
		ImageUser: img.User, Supplemental: sc.GetSupplementalGroups(),
		Strict: sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict,
	})
	if err != nil {
		return nil, err
	}
	podNS := p.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	in := oci.Input{
		ID: id, Pod: p.cfg, Container: cfg, Image: img, Rootfs: rootfs, User: user,
		Net: nsFrom(pod.NetNS), IPC: nsFrom(pod.IPCNS), UTS: nsFrom(pod.UTSNS),
		ShmPath:     pod.ShmPath,
		ResolvConf:  filepath.Join(pod.Dir, "resolv.conf"),
		Hosts:       filepath.Join(pod.Dir, "hosts"),
		CgroupsPath: filepath.Join(pod.CgroupParent, "flotilla-"+id),
		Sysctls:     p.cfg.GetLinux().GetSysctls(),
		Bounding:    s.Bounding, DefaultCaps: s.Config.DefaultCapabilities,
		RuntimeDefault: s.seccomp, OOM: s.oom, HostDevices: s.HostDevices, Device: deviceFromPath,
		AppArmorEnabled: apparmorEnabled(), SELinuxEnabled: selinuxEnabled(),
		RROHook: s.rroHook(pod.RuntimeHandler),
	}
	if podNS.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		in.HostnameFile = filepath.Join(pod.Dir, "hostname")
		in.Hostname = hostnameOf(pod.Dir)
	} else {
		in.Net = oci.NS{Mode: oci.NSHost}
	}
	if podNS.GetIpc() == runtimeapi.NamespaceMode_NODE {
		in.IPC = oci.NS{Mode: oci.NSHost}
		in.ShmPath = "/dev/shm" // the host's, as the host IPC namespace goes with it
	}
	if pod.UTSNS == "" {
		in.UTS = oci.NS{Mode: oci.NSHost}
	}
	pid := sc.GetNamespaceOptions().GetPid()
	if sc.GetNamespaceOptions() == nil {
		pid = podNS.GetPid()
	}
	switch {
	case infra:
		in.PID = oci.NS{Mode: oci.NSNew}
	case pid == runtimeapi.NamespaceMode_NODE:
		in.PID = oci.NS{Mode: oci.NSHost}
	case pid == runtimeapi.NamespaceMode_POD:
		path, err := s.pidNSOf(pod.InfraID)
		if err != nil {
			return nil, fmt.Errorf("pod PID namespace: %w", err)
		}
		in.PID = oci.NS{Mode: oci.NSPath, Path: path}
	case pid == runtimeapi.NamespaceMode_TARGET:
		target, err := s.lookupContainer(sc.GetNamespaceOptions().GetTargetId())
		if err != nil {
			return nil, fmt.Errorf("target PID namespace: %w", err)
		}
		path, err := s.pidNSOf(target.snapshot().ID)
		if err != nil {
			return nil, fmt.Errorf("target PID namespace: %w", err)
		}
		in.PID = oci.NS{Mode: oci.NSPath, Path: path}
	default:
		in.PID = oci.NS{Mode: oci.NSNew}
	}
	return oci.Build(in)
}

func valuePtr(v *runtimeapi.Int64Value) *int64 {
	if v == nil {
		return nil
	}
	x := v.Value
	return &x
}

func nsFrom(path string) oci.NS {
	if path == "" {
		return oci.NS{Mode: oci.NSHost}
	}
	return oci.NS{Mode: oci.NSPath, Path: path}
}

func hostnameOf(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "hostname"))
	return strings.TrimSpace(string(b))
}

// pidNSOf returns the PID namespace of a running container.
func (s *Service) pidNSOf(id string) (string, error) {
	s.mu.RLock()
	c, ok := s.ctrs[id]
	s.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	r := c.snapshot()
	if r.State != store.ContainerRunning || r.Pid == 0 {
		return "", fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	return fmt.Sprintf("/proc/%d/ns/pid", r.Pid), nil
}

func ctrKey(podID string, cfg *runtimeapi.ContainerConfig) string {
	return requestKey(cfg, &runtimeapi.CreateContainerRequest{PodSandboxId: podID})
}

// createHostPaths creates missing bind-mount sources as directories, as the
// kubelet expects (a hostPath volume of type "" or DirectoryOrCreate).
func createHostPaths(mounts []*runtimeapi.Mount) error {
	for _, m := range mounts {
		src := m.GetHostPath()
		if !filepath.IsAbs(src) {
			return fmt.Errorf("mount host_path %q is not absolute: %w", src, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Lstat(src); os.IsNotExist(err) {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("create missing mount source %s: %w", src, err)
			}
		}
	}
	return nil
}
