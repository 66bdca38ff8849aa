package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/metrics"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/nsutil"
	"flotilla.dev/sandboxd/internal/oci"
	"flotilla.dev/sandboxd/internal/store"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const shmSize = 64 << 20

// RunPodSandbox creates a pod: pinned IPC/UTS namespaces, a network from
// netd, /dev/shm, resolv.conf, hosts and hostname; a pause container only
// when the pod shares one PID namespace.
func (s *Service) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	if err := s.validatePod(cfg, req.GetRuntimeHandler()); err != nil {
		return nil, err
	}
	res, existing, err := s.podNames.Reserve(ctx, podName(cfg.GetMetadata()), requestKey(req))
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox: %w", err)
	}
	if res == nil {
		return &runtimeapi.RunPodSandboxResponse{PodSandboxId: existing}, nil
	}
	// The create goes on if the kubelet gives up: its retry waits for it.
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	id, err := s.runPod(cctx, req)
	res.Done(id, err)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %s: %w", cfg.GetMetadata().GetName(), err)
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

func (s *Service) validatePod(cfg *runtimeapi.PodSandboxConfig, handler string) error {
	m := cfg.GetMetadata()
	if m == nil || m.Name == "" || m.Namespace == "" || m.Uid == "" {
		return fmt.Errorf("pod sandbox metadata needs name, namespace and uid: %w", errdefs.ErrInvalidArgument)
	}
	if _, ok := s.Config.Runtime(handler); !ok {
		return fmt.Errorf("runtime handler %q is not configured (have %v): %w", handler, s.Config.Handlers(), errdefs.ErrInvalidArgument)
	}
	if err := validHostname(cfg.GetHostname()); err != nil {
		return err
	}
	if err := validateDNS(cfg.GetDnsConfig()); err != nil {
		return err
	}
	if _, err := cgroupParent(cfg.GetLinux().GetCgroupParent()); err != nil {
		return err
	}
	if err := oci.ValidateSysctls(cfg.GetLinux().GetSysctls()); err != nil {
		return err
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	for k := range cfg.GetLinux().GetSysctls() {
		if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE && len(k) > 4 && k[:4] == "net." {
			return fmt.Errorf("sysctl %q needs the pod's own network namespace: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		return fmt.Errorf("pod PID namespace mode TARGET is only valid for containers: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkUserns(ns); err != nil {
		return err
	}
	if cfg.GetLogDirectory() != "" && !filepath.IsAbs(cfg.GetLogDirectory()) {
		return fmt.Errorf("log_directory %q is not absolute: %w", cfg.GetLogDirectory(), errdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *Service) runPod(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (id string, err error) {
	cfg := req.GetConfig()
	lin := cfg.GetLinux()
	nsOpts := lin.GetSecurityContext().GetNamespaceOptions()
	hostNet := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	hostIPC := nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE
	handler := req.GetRuntimeHandler()
	if handler == "" {
		handler = s.Config.DefaultRuntime
	}
	parent, _ := cgroupParent(lin.GetCgroupParent())
	id = newID()
	dir := filepath.Join(s.Config.RunRoot, "pods", id)
	rec := &store.Pod{ID: id, State: store.PodReady, CreatedAt: time.Now().UnixNano(),
		RuntimeHandler: handler, Dir: dir, CgroupParent: parent, NameKey: requestKey(req)}
	rec.Config, _ = marshal(cfg)
	p := newSandbox(rec, cfg)
	log := flog.From(ctx).With(flog.KeyPodID, id)
	ph := metrics.StartPhases("run_pod")
	defer ph.Done(log)

	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", fmt.Errorf("pod dir: %w", err)
	}
	cleanups = append(cleanups, func() { _ = os.RemoveAll(dir) })

	// The network (netd: netns + CNI ADD, the longest step) is set up while
	// the IPC/UTS namespaces are pinned and /dev/shm is mounted.
	var waitNet func() netResult
	if !hostNet {
		if s.Net == nil {
			return "", fmt.Errorf("pod network: netd is not configured: %w", errdefs.ErrUnavailable)
		}
		waitNet = s.setupNetwork(ctx, setupRequest(id, cfg, parent, handler))
		// From here on a failure tears the network down, once SetupPod
		// returned (a pod netd never set up tears down as a no-op).
		cleanups = append(cleanups, func() {
			waitNet()
			tctx, cancel := timeout(ctx, callTimeout)
			defer cancel()
			if _, err := s.Net.TeardownPod(tctx, &netv1.TeardownPodRequest{PodId: id}); err != nil {
				log.Warn("tear down pod network after failed run", flog.KeyError, err)
			}
		})
	}

	// Without a hostname (or on the host network) the pod takes the node's,
	// as CRI-O does.
	hostname := cfg.GetHostname()
	if hostname == "" || hostNet {
		hostname, _ = os.Hostname()
	}
	var kinds []nsutil.Kind
	if !hostIPC {
		kinds = append(kinds, nsutil.IPC)
	}
	if !hostNet {
		kinds = append(kinds, nsutil.UTS)
	}
	pinned, err := nsutil.Pin(filepath.Join(dir, "ns"), hostname, kinds...)
	if err != nil {
		return "", err
	}
	rec.IPCNS, rec.UTSNS = pinned[nsutil.IPC], pinned[nsutil.UTS]
	ph.Mark("pin_namespaces")
	cleanups = append(cleanups, func() { _ = nsutil.Unpin(rec.IPCNS); _ = nsutil.Unpin(rec.UTSNS) })

	if !hostIPC {
		rec.ShmPath = filepath.Join(dir, "shm")
		if err := nsutil.MountShm(rec.ShmPath, shmSize); err != nil {
			return "", err
		}
		cleanups = append(cleanups, func() { _ = nsutil.Unmount(rec.ShmPath) })
		ph.Mark("shm")
	}

	if waitNet != nil {
		r := waitNet()
		ph.Mark("network_wait")   // beyond the steps above, which ran meanwhile
		ph.Add("network", r.took) // netd's SetupPod as sandboxd saw it
		if r.err != nil {
			return "", fmt.Errorf("set up pod network: %w", r.err)
		}
		rec.NetNS, rec.IPs = r.resp.GetNetwork().GetNetnsPath(), r.resp.GetNetwork().GetIps()
		if rec.NetNS == "" {
			return "", errors.New("set up pod network: netd returned no netns path")
		}
	}

	if err := writeResolvConf(filepath.Join(dir, "resolv.conf"), cfg.GetDnsConfig()); err != nil {
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	if err := writeHosts(filepath.Join(dir, "hosts"), hostname, rec.IPs); err != nil {
		return "", fmt.Errorf("hosts: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n")); err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	if d := cfg.GetLogDirectory(); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("log directory: %w", err)
		}
	}

	ph.Mark("files")
	if err := s.Store.PutPod(rec); err != nil {
		return "", err
	}
	ph.Mark("store")
	cleanups = append(cleanups, func() { _ = s.Store.DeletePod(id) })
	s.mu.Lock()
	s.pods[id] = p
	s.mu.Unlock()
	cleanups = append(cleanups, func() { s.mu.Lock(); delete(s.pods, id); s.mu.Unlock() })

	if nsOpts.GetPid() == runtimeapi.NamespaceMode_POD {
		if err := s.startInfra(ctx, p); err != nil {
			return "", fmt.Errorf("pause container: %w", err)
		}
		ph.Mark("pause")
	}
	log.Info("pod sandbox ready", "name", cfg.GetMetadata().GetName(), "netns", rec.NetNS)
	s.publishPod(p, "created")
	s.publishPod(p, "started")
	return id, nil
}

type netResult struct {
	resp *netv1.SetupPodResponse
	err  error
	took time.Duration
}

// setupNetwork calls netd's SetupPod in the background; the returned
// function waits for its result (any number of times).
func (s *Service) setupNetwork(ctx context.Context, req *netv1.SetupPodRequest) func() netResult {
	ch := make(chan netResult, 1)
	start := time.Now()
	go func() {
		nctx, cancel := timeout(ctx, callTimeout)
		defer cancel()
		resp, err := s.Net.SetupPod(nctx, req)
		ch <- netResult{resp: resp, err: err, took: time.Since(start)}
	}()
	return sync.OnceValue(func() netResult { return <-ch })
}

func setupRequest(id string, cfg *runtimeapi.PodSandboxConfig, parent, handler string) *netv1.SetupPodRequest {
	m := cfg.GetMetadata()
	r := &netv1.SetupPodRequest{PodId: id, Name: m.GetName(), Namespace: m.GetNamespace(), Uid: m.GetUid(),
		Annotations: cfg.GetAnnotations(), Labels: cfg.GetLabels(), CgroupParent: parent, RuntimeHandler: handler}
	if d := cfg.GetDnsConfig(); d != nil {
		r.Dns = &netv1.DNSConfig{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	for _, pm := range cfg.GetPortMappings() {
		proto := "tcp"
		switch pm.GetProtocol() {
		case runtimeapi.Protocol_UDP:
			proto = "udp"
		case runtimeapi.Protocol_SCTP:
			proto = "sctp"
		}
		r.PortMappings = append(r.PortMappings, &netv1.PortMapping{Protocol: proto,
			ContainerPort: pm.GetContainerPort(), HostPort: pm.GetHostPort(), HostIp: pm.GetHostIp()})
	}
	return r
}
