package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	flog "flotilla.dev/lib/log"
	imagev1 "flotilla.dev/proto/image/v1"
	"flotilla.dev/sandboxd/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (s *Service) cgroupPath(r store.Container) string {
	parent := "/flotilla"
	if p, err := s.lookupPod(r.PodID); err == nil {
		parent = p.snapshot().CgroupParent
	}
	return filepath.Join(parent, "flotilla-"+r.ID)
}

// writableLayers asks imaged what the containers wrote into their layers.
// Stats go on without it when imaged cannot say (nil map).
func (s *Service) writableLayers(ctx context.Context, ids []string) map[string]*runtimeapi.FilesystemUsage {
	if s.Rootfs == nil || len(ids) == 0 {
		return nil
	}
	r, err := s.Rootfs.RootfsUsage(ctx, &imagev1.RootfsUsageRequest{ContainerIds: ids})
	if err != nil {
		flog.From(ctx).Debug("writable layer usage unavailable", flog.KeyError, err)
		return nil
	}
	now := time.Now().UnixNano()
	out := make(map[string]*runtimeapi.FilesystemUsage, len(r.GetUsage()))
	for _, u := range r.GetUsage() {
		out[u.GetContainerId()] = &runtimeapi.FilesystemUsage{Timestamp: now,
			FsId:      &runtimeapi.FilesystemIdentifier{Mountpoint: r.GetMountpoint()},
			UsedBytes: &runtimeapi.UInt64Value{Value: u.GetUsedBytes()}, InodesUsed: &runtimeapi.UInt64Value{Value: u.GetInodesUsed()}}
	}
	return out
}

// containerStats reads the container's cgroup; wl is its writable layer's
// usage (nil when unknown).
func (s *Service) containerStats(c *container, wl *runtimeapi.FilesystemUsage) (*runtimeapi.ContainerStats, error) {
	r := c.snapshot()
	now := time.Now().UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: r.ID, Metadata: c.cfg.GetMetadata(),
			Labels: c.cfg.GetLabels(), Annotations: c.cfg.GetAnnotations()},
		Cpu:           &runtimeapi.CpuUsage{Timestamp: now},
		Memory:        &runtimeapi.MemoryUsage{Timestamp: now},
		WritableLayer: wl,
	}
	if r.State != store.ContainerRunning {
		return out, nil
	}
	u, err := readCgroupUsage(s.cgroupPath(r))
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", r.ID, err)
	}
	out.Cpu.UsageCoreNanoSeconds = &runtimeapi.UInt64Value{Value: u.CPUNanos}
	out.Memory.WorkingSetBytes = &runtimeapi.UInt64Value{Value: u.WorkingSet()}
	out.Memory.UsageBytes = &runtimeapi.UInt64Value{Value: u.Memory}
	out.Memory.RssBytes = &runtimeapi.UInt64Value{Value: u.RSS}
	out.Memory.PageFaults = &runtimeapi.UInt64Value{Value: u.PageFaults}
	out.Memory.MajorPageFaults = &runtimeapi.UInt64Value{Value: u.MajorFaults}
	return out, nil
}

// ContainerStats returns one container's CPU and memory usage.
func (s *Service) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := s.containerStats(c, s.writableLayers(ctx, []string{c.id})[c.id])
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats returns the usage of the containers matching the filter.
func (s *Service) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	list := s.listContainers(&runtimeapi.ContainerFilter{Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector()})
	resp := &runtimeapi.ListContainerStatsResponse{}
	ids := make([]string, 0, len(list))
	for _, item := range list {
		ids = append(ids, item.Id)
	}
	wl := s.writableLayers(ctx, ids)
	for _, item := range list {
		c, err := s.lookupContainer(item.Id)
		if err != nil {
			continue // removed meanwhile
		}
		st, err := s.containerStats(c, wl[item.Id])
		if err != nil {
			continue // exited meanwhile
		}
		resp.Stats = append(resp.Stats, st)
	}
	return resp, nil
}

// PodSandboxStats sums its containers' usage.
func (s *Service) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	p, err := s.lookupPod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(p, s.podWritableLayers(ctx, p))}, nil
}

// ListPodSandboxStats returns the usage of the pods matching the filter.
func (s *Service) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	pods := s.podsMatching(&runtimeapi.PodSandboxFilter{Id: f.GetId(), LabelSelector: f.GetLabelSelector()})
	wl := s.podWritableLayers(ctx, pods...) // one imaged call for all pods
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, p := range pods {
		resp.Stats = append(resp.Stats, s.podStats(p, wl))
	}
	return resp, nil
}

// podsMatching are the pods the filter lists (nil: all), without those
// removed meanwhile.
func (s *Service) podsMatching(f *runtimeapi.PodSandboxFilter) []*sandbox {
	var pods []*sandbox
	for _, item := range s.listPods(f) {
		if p, err := s.lookupPod(item.Id); err == nil {
			pods = append(pods, p)
		}
	}
	return pods
}

// podWritableLayers is writableLayers for the containers of pods.
func (s *Service) podWritableLayers(ctx context.Context, pods ...*sandbox) map[string]*runtimeapi.FilesystemUsage {
	var ids []string
	for _, p := range pods {
		for _, c := range s.podContainers(p.snapshot().ID) {
			ids = append(ids, c.id)
		}
	}
	return s.writableLayers(ctx, ids)
}

// podStats sums the pod's containers; wl holds their writable layers.
func (s *Service) podStats(p *sandbox, wl map[string]*runtimeapi.FilesystemUsage) *runtimeapi.PodSandboxStats {
	r := p.snapshot()
	now := time.Now().UnixNano()
	lin := &runtimeapi.LinuxPodSandboxStats{
		Cpu:    &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}, UsageBytes: &runtimeapi.UInt64Value{}},
	}
	for _, c := range s.podContainers(r.ID) {
		if c.infra {
			continue
		}
		st, err := s.containerStats(c, wl[c.id])
		if err != nil {
			continue
		}
		lin.Containers = append(lin.Containers, st)
		lin.Cpu.UsageCoreNanoSeconds.Value += st.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		lin.Memory.WorkingSetBytes.Value += st.GetMemory().GetWorkingSetBytes().GetValue()
		lin.Memory.UsageBytes.Value += st.GetMemory().GetUsageBytes().GetValue()
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: r.ID, Metadata: p.cfg.GetMetadata(),
			Labels: p.cfg.GetLabels(), Annotations: p.cfg.GetAnnotations()},
		Linux: lin,
	}
}
