package cri

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"flotilla.dev/sandboxd/internal/store"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI metrics RPCs (ListMetricDescriptors, ListPodSandboxMetrics) serve
// what the kubelet exposes on /metrics/cadvisor when it takes container
// metrics from the runtime (PodAndContainerStatsFromCRI): cAdvisor's names
// and labels, so dashboards and alerts written for cAdvisor keep working.
// Values are read from the containers' cgroups (v1 or v2), /proc and the
// writable layers imaged reports when the kubelet asks; nothing is sampled in
// the background. The CRI carries integers: seconds are whole seconds.
//
// Not served: hugetlb, pressure (PSI; cgroup v2 only), ulimits.

// metricLabelKeys label every metric: cAdvisor's container, id, image, name,
// namespace and pod. A pod's own metrics (network) have container "POD",
// as cAdvisor's infra container had.
var metricLabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

type metricDesc struct {
	name, help string
	counter    bool
	extra      []string // label keys after metricLabelKeys
}

var metricDescs = []metricDesc{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", true, nil},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", true, nil},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", true, nil},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", true, nil},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", true, nil},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", true, nil},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", false, nil},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", false, nil},
	{"container_memory_working_set_bytes", "Current working set in bytes.", false, nil},
	{"container_memory_cache", "Number of bytes of page cache memory.", false, nil},
	{"container_memory_rss", "Size of RSS in bytes.", false, nil},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", false, nil},
	{"container_memory_swap", "Container swap usage in bytes.", false, nil},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", false, nil},
	{"container_memory_failcnt", "Number of memory usage hits limits.", true, nil},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", true, []string{"failure_type", "scope"}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", true, nil},
	{"container_spec_cpu_period", "CPU period of the container.", false, nil},
	{"container_spec_cpu_quota", "CPU quota of the container.", false, nil},
	{"container_spec_cpu_shares", "CPU share of the container.", false, nil},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", false, nil},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", false, nil},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", false, nil},
	{"container_processes", "Number of processes running inside the container.", false, nil},
	{"container_threads", "Number of threads running inside the container.", false, nil},
	{"container_threads_max", "Maximum number of threads allowed inside the container, 0 if unlimited.", false, nil},
	{"container_file_descriptors", "Number of open file descriptors for the container.", false, nil},
	{"container_sockets", "Number of open sockets for the container.", false, nil},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", false, []string{"device"}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", false, []string{"device"}},
	{"container_fs_inodes_free", "Number of available Inodes.", false, []string{"device"}},
	{"container_fs_inodes_total", "Number of Inodes.", false, []string{"device"}},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", true, []string{"device"}},
	{"container_fs_reads_total", "Cumulative count of reads completed.", true, []string{"device"}},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", true, []string{"device"}},
	{"container_fs_writes_total", "Cumulative count of writes completed.", true, []string{"device"}},
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", true, []string{"device", "major", "minor", "operation"}},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", false, nil},
	{"container_last_seen", "Last time a container was seen by the exporter.", false, nil},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", true, []string{"interface"}},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", true, []string{"interface"}},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", true, []string{"interface"}},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", true, []string{"interface"}},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", true, []string{"interface"}},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", true, []string{"interface"}},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", true, []string{"interface"}},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", true, []string{"interface"}},
}

var metricByName = func() map[string]metricDesc {
	m := make(map[string]metricDesc, len(metricDescs))
	for _, d := range metricDescs {
		m[d.name] = d
	}
	return m
}()

// ListMetricDescriptors describes every metric ListPodSandboxMetrics can
// return.
func (s *Service) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDescs))
	for _, d := range metricDescs {
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: append(append([]string{}, metricLabelKeys...), d.extra...)})
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics returns the metrics of every pod and of its running
// containers.
func (s *Service) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	pods := s.podsMatching(nil)
	wl := s.podWritableLayers(ctx, pods...)
	var fs fsInfo
	for _, u := range wl {
		fs = statFs(u.GetFsId().GetMountpoint())
		break
	}
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, p := range pods {
		resp.PodMetrics = append(resp.PodMetrics, s.podMetrics(p, wl, fs))
	}
	return resp, nil
}

// metricSet builds the metrics of one container (or pod) at one time.
type metricSet struct {
	labels []string
	now    int64
	out    []*runtimeapi.Metric
}

func (m *metricSet) add(name string, v uint64, extra ...string) {
	d := metricByName[name]
	typ := runtimeapi.MetricType_GAUGE
	if d.counter {
		typ = runtimeapi.MetricType_COUNTER
	}
	m.out = append(m.out, &runtimeapi.Metric{Name: name, Timestamp: m.now, MetricType: typ,
		LabelValues: append(append([]string{}, m.labels...), extra...), Value: &runtimeapi.UInt64Value{Value: v}})
}

func (s *Service) podMetrics(p *sandbox, wl map[string]*runtimeapi.FilesystemUsage, fs fsInfo) *runtimeapi.PodSandboxMetrics {
	r := p.snapshot()
	md := p.cfg.GetMetadata()
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: r.ID}
	pid := 0 // any process of the pod, for its network namespace
	for _, c := range s.podContainers(r.ID) {
		cr := c.snapshot()
		if cr.State != store.ContainerRunning {
			continue
		}
		if pid == 0 {
			pid = int(cr.Pid)
		}
		if c.infra {
			continue
		}
		image := c.cfg.GetImage().GetUserSpecifiedImage()
		if image == "" {
			image = c.cfg.GetImage().GetImage()
		}
		m := &metricSet{now: time.Now().UnixNano(),
			labels: []string{c.cfg.GetMetadata().GetName(), cr.ID, image, ctrName(r.ID, c.cfg.GetMetadata()), md.GetNamespace(), md.GetName()}}
		if err := containerMetrics(m, s.cgroupPath(cr), cr, wl[cr.ID], fs); err != nil {
			continue // exited meanwhile
		}
		out.ContainerMetrics = append(out.ContainerMetrics, &runtimeapi.ContainerMetrics{ContainerId: cr.ID, Metrics: m.out})
	}
	// The pod's network: its interfaces seen from any of its processes; a
	// pod on the node's network has none of its own.
	hostNet := p.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
	if pid != 0 && !hostNet {
		m := &metricSet{now: time.Now().UnixNano(), labels: []string{"POD", r.ID, "", md.GetName(), md.GetNamespace(), md.GetName()}}
		networkMetrics(m, pid)
		out.Metrics = m.out
	}
	return out
}

// containerMetrics adds a running container's metrics; an error means its
// cgroup is gone.
func containerMetrics(m *metricSet, path string, r store.Container, wl *runtimeapi.FilesystemUsage, fs fsInfo) error {
	dirs, err := cgroupDirs(path)
	if err != nil {
		return err
	}
	procs, err := readPids(filepath.Join(dirs.procs, "cgroup.procs"))
	if err != nil {
		return err
	}
	if dirs.v2 {
		v2Metrics(m, dirs.cpu)
	} else {
		v1Metrics(m, dirs)
	}
	threads := 0
	if dirs.v2 {
		if ts, err := readPids(filepath.Join(dirs.procs, "cgroup.threads")); err == nil {
			threads = len(ts)
		}
	} else if ts, err := readPids(filepath.Join(dirs.procs, "tasks")); err == nil {
		threads = len(ts)
	}
	var fds, sockets uint64
	for _, pid := range procs {
		f, s := countFds(pid)
		fds, sockets = fds+f, sockets+s
	}
	m.add("container_processes", uint64(len(procs)))
	m.add("container_threads", uint64(threads))
	threadsMax := uint64(0)
	if dirs.pids != "" {
		if v, err := readUint(filepath.Join(dirs.pids, "pids.max")); err == nil {
			threadsMax = v // "max" (unlimited) does not parse: 0
		}
	}
	m.add("container_threads_max", threadsMax)
	m.add("container_file_descriptors", fds)
	m.add("container_sockets", sockets)
	if wl != nil && fs.device != "" {
		m.add("container_fs_usage_bytes", wl.GetUsedBytes().GetValue(), fs.device)
		m.add("container_fs_limit_bytes", fs.size, fs.device)
		m.add("container_fs_inodes_free", fs.inodesFree, fs.device)
		m.add("container_fs_inodes_total", fs.inodes, fs.device)
	}
	if r.StartedAt > 0 {
		m.add("container_start_time_seconds", uint64(r.StartedAt/int64(time.Second)))
	}
	m.add("container_last_seen", uint64(m.now/int64(time.Second)))
	return nil
}

func v1Metrics(m *metricSet, d cgDirs) {
	if v, err := readUint(filepath.Join(d.cpuacct, "cpuacct.usage")); err == nil {
		m.add("container_cpu_usage_seconds_total", v/1e9)
	}
	if st, err := readKeyed(filepath.Join(d.cpuacct, "cpuacct.stat")); err == nil {
		m.add("container_cpu_user_seconds_total", st["user"]/userHZ)
		m.add("container_cpu_system_seconds_total", st["system"]/userHZ)
	}
	if st, err := readKeyed(filepath.Join(d.cpu, "cpu.stat")); err == nil {
		m.add("container_cpu_cfs_periods_total", st["nr_periods"])
		m.add("container_cpu_cfs_throttled_periods_total", st["nr_throttled"])
		m.add("container_cpu_cfs_throttled_seconds_total", st["throttled_time"]/1e9)
	}
	if v, err := readUint(filepath.Join(d.cpu, "cpu.cfs_period_us")); err == nil {
		m.add("container_spec_cpu_period", v)
	}
	if v, err := readInt(filepath.Join(d.cpu, "cpu.cfs_quota_us")); err == nil && v > 0 {
		m.add("container_spec_cpu_quota", uint64(v))
	}
	if v, err := readUint(filepath.Join(d.cpu, "cpu.shares")); err == nil {
		m.add("container_spec_cpu_shares", v)
	}
	mem := func(file string) (uint64, bool) {
		v, err := readUint(filepath.Join(d.memory, file))
		return v, err == nil
	}
	usage, _ := mem("memory.usage_in_bytes")
	m.add("container_memory_usage_bytes", usage)
	if v, ok := mem("memory.max_usage_in_bytes"); ok {
		m.add("container_memory_max_usage_bytes", v)
	}
	if v, ok := mem("memory.failcnt"); ok {
		m.add("container_memory_failcnt", v)
	}
	if v, ok := mem("memory.kmem.usage_in_bytes"); ok {
		m.add("container_memory_kernel_usage", v)
	}
	if st, err := readKeyed(filepath.Join(d.memory, "memory.stat")); err == nil {
		m.add("container_memory_working_set_bytes", cgUsage{Memory: usage, InactiveFile: st["total_inactive_file"]}.WorkingSet())
		m.add("container_memory_cache", st["total_cache"])
		m.add("container_memory_rss", st["total_rss"])
		m.add("container_memory_mapped_file", st["total_mapped_file"])
		m.add("container_memory_swap", st["total_swap"])
		m.add("container_memory_failures_total", st["pgfault"], "pgfault", "container")
		m.add("container_memory_failures_total", st["pgmajfault"], "pgmajfault", "container")
		m.add("container_memory_failures_total", st["total_pgfault"], "pgfault", "hierarchy")
		m.add("container_memory_failures_total", st["total_pgmajfault"], "pgmajfault", "hierarchy")
	}
	if st, err := readKeyed(filepath.Join(d.memory, "memory.oom_control")); err == nil {
		m.add("container_oom_events_total", st["oom_kill"])
	}
	if v, ok := mem("memory.limit_in_bytes"); ok {
		m.add("container_spec_memory_limit_bytes", v)
	}
	if v, ok := mem("memory.soft_limit_in_bytes"); ok {
		m.add("container_spec_memory_reservation_limit_bytes", v)
	}
	if v, ok := mem("memory.memsw.limit_in_bytes"); ok {
		m.add("container_spec_memory_swap_limit_bytes", v)
	}
	if d.blkio != "" {
		ioBytes := readBlkio(filepath.Join(d.blkio, "blkio.throttle.io_service_bytes_recursive"))
		ioOps := readBlkio(filepath.Join(d.blkio, "blkio.throttle.io_serviced_recursive"))
		ioMetrics(m, ioBytes, ioOps)
	}
}

func v2Metrics(m *metricSet, dir string) {
	if st, err := readKeyed(filepath.Join(dir, "cpu.stat")); err == nil {
		m.add("container_cpu_usage_seconds_total", st["usage_usec"]/1e6)
		m.add("container_cpu_user_seconds_total", st["user_usec"]/1e6)
		m.add("container_cpu_system_seconds_total", st["system_usec"]/1e6)
		m.add("container_cpu_cfs_periods_total", st["nr_periods"])
		m.add("container_cpu_cfs_throttled_periods_total", st["nr_throttled"])
		m.add("container_cpu_cfs_throttled_seconds_total", st["throttled_usec"]/1e6)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		if quota, period, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok {
			if v, err := strconv.ParseUint(period, 10, 64); err == nil {
				m.add("container_spec_cpu_period", v)
			}
			if v, err := strconv.ParseUint(quota, 10, 64); err == nil {
				m.add("container_spec_cpu_quota", v)
			}
		}
	}
	if w, err := readUint(filepath.Join(dir, "cpu.weight")); err == nil && w > 0 {
		// cAdvisor's conversion, the inverse of runc's shares → weight up to
		// rounding (1024 shares are weight 39, reported as 998).
		m.add("container_spec_cpu_shares", 2+(w-1)*262142/9999)
	}
	limit := func(file string) uint64 { // "max" is unlimited: cgroup v1's number for it
		v, err := readUint(filepath.Join(dir, file))
		if err != nil {
			return 9223372036854771712
		}
		return v
	}
	usage, _ := readUint(filepath.Join(dir, "memory.current"))
	m.add("container_memory_usage_bytes", usage)
	if v, err := readUint(filepath.Join(dir, "memory.peak")); err == nil {
		m.add("container_memory_max_usage_bytes", v)
	}
	if v, err := readUint(filepath.Join(dir, "memory.swap.current")); err == nil {
		m.add("container_memory_swap", v)
	}
	if st, err := readKeyed(filepath.Join(dir, "memory.stat")); err == nil {
		m.add("container_memory_working_set_bytes", cgUsage{Memory: usage, InactiveFile: st["inactive_file"]}.WorkingSet())
		m.add("container_memory_cache", st["file"])
		m.add("container_memory_rss", st["anon"])
		m.add("container_memory_mapped_file", st["file_mapped"])
		m.add("container_memory_kernel_usage", st["kernel"])
		m.add("container_memory_failures_total", st["pgfault"], "pgfault", "container")
		m.add("container_memory_failures_total", st["pgmajfault"], "pgmajfault", "container")
		m.add("container_memory_failures_total", st["pgfault"], "pgfault", "hierarchy")
		m.add("container_memory_failures_total", st["pgmajfault"], "pgmajfault", "hierarchy")
	}
	if ev, err := readKeyed(filepath.Join(dir, "memory.events")); err == nil {
		m.add("container_memory_failcnt", ev["max"])
		m.add("container_oom_events_total", ev["oom_kill"])
	}
	m.add("container_spec_memory_limit_bytes", limit("memory.max"))
	m.add("container_spec_memory_reservation_limit_bytes", limit("memory.low"))
	m.add("container_spec_memory_swap_limit_bytes", limit("memory.swap.max"))
	ioBytes, ioOps := readIOStat(filepath.Join(dir, "io.stat"))
	ioMetrics(m, ioBytes, ioOps)
}

// blkio entries: device "major:minor" → operation ("Read", "Write", …) → value.
type blkio map[string]map[string]uint64

func ioMetrics(m *metricSet, ioBytes, ioOps blkio) {
	for dev, ops := range ioBytes {
		name := deviceName(dev)
		major, minor, _ := strings.Cut(dev, ":")
		m.add("container_fs_reads_bytes_total", ops["Read"], name)
		m.add("container_fs_writes_bytes_total", ops["Write"], name)
		for _, op := range []string{"Read", "Write"} {
			m.add("container_blkio_device_usage_total", ops[op], name, major, minor, op)
		}
	}
	for dev, ops := range ioOps {
		name := deviceName(dev)
		m.add("container_fs_reads_total", ops["Read"], name)
		m.add("container_fs_writes_total", ops["Write"], name)
	}
}

// readBlkio reads a cgroup v1 blkio file: "8:0 Read 4096" lines.
func readBlkio(name string) blkio {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil
	}
	out := blkio{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.Contains(f[0], ":") {
			continue
		}
		if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			if out[f[0]] == nil {
				out[f[0]] = map[string]uint64{}
			}
			out[f[0]][f[1]] = v
		}
	}
	return out
}

// readIOStat reads cgroup v2's io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 …".
func readIOStat(name string) (ioBytes, ioOps blkio) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, nil
	}
	ioBytes, ioOps = blkio{}, blkio{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ioBytes[f[0]], ioOps[f[0]] = map[string]uint64{}, map[string]uint64{}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				ioBytes[f[0]]["Read"] = n
			case "wbytes":
				ioBytes[f[0]]["Write"] = n
			case "rios":
				ioOps[f[0]]["Read"] = n
			case "wios":
				ioOps[f[0]]["Write"] = n
			}
		}
	}
	return ioBytes, ioOps
}

// deviceName names a block device "major:minor" as /dev/<name>.
func deviceName(dev string) string {
	if l, err := os.Readlink("/sys/dev/block/" + dev); err == nil {
		return "/dev/" + filepath.Base(l)
	}
	return dev
}

// networkMetrics adds the interfaces (but lo) of pid's network namespace.
func networkMetrics(m *metricSet, pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return
	}
	names := []string{"receive_bytes", "receive_packets", "receive_errors", "receive_packets_dropped",
		"transmit_bytes", "transmit_packets", "transmit_errors", "transmit_packets_dropped"}
	cols := []int{0, 1, 2, 3, 8, 9, 10, 11} // of /proc/net/dev's 16 counters
	for _, line := range strings.Split(string(b), "\n") {
		ifname, rest, ok := strings.Cut(line, ":")
		ifname = strings.TrimSpace(ifname)
		if !ok || ifname == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		for i, n := range names {
			if v, err := strconv.ParseUint(f[cols[i]], 10, 64); err == nil {
				m.add("container_network_"+n+"_total", v, ifname)
			}
		}
	}
}

// countFds counts pid's open file descriptors and the sockets among them.
func countFds(pid int) (fds, sockets uint64) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		fds++
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			sockets++
		}
	}
	return fds, sockets
}

func readPids(name string) ([]int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if p, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func readInt(name string) (int64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
}

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on Linux).
const userHZ = 100

// cgDirs are the directories of one cgroup, per v1 controller (all the
// same on v2).
type cgDirs struct {
	v2                                       bool
	cpu, cpuacct, memory, blkio, pids, procs string
}

func cgroupDirs(path string) (cgDirs, error) {
	r, err := findCgroupRoots()
	if err != nil {
		return cgDirs{}, err
	}
	if r.unified {
		dir := filepath.Join(cgroupRoot, path)
		if _, err := os.Stat(dir); err != nil {
			return cgDirs{}, err
		}
		return cgDirs{v2: true, cpu: dir, cpuacct: dir, memory: dir, blkio: dir, pids: dir, procs: dir}, nil
	}
	dir := func(controller string) string {
		if p, err := v1Mount(r.v1, controller); err == nil {
			return filepath.Join(p, path)
		}
		return ""
	}
	d := cgDirs{cpu: dir("cpu"), cpuacct: filepath.Join(r.cpuacct, path), memory: filepath.Join(r.memory, path),
		blkio: dir("blkio"), pids: dir("pids"), procs: filepath.Join(r.memory, path)}
	if _, err := os.Stat(d.memory); err != nil {
		return cgDirs{}, err
	}
	return d, nil
}

// fsInfo is the file system holding the writable layers.
type fsInfo struct {
	device                   string
	size, inodes, inodesFree uint64
}

func statFs(path string) fsInfo {
	var st unix.Statfs_t
	var s unix.Stat_t
	if path == "" || unix.Statfs(path, &st) != nil || unix.Stat(path, &s) != nil {
		return fsInfo{}
	}
	return fsInfo{device: deviceName(fmt.Sprintf("%d:%d", unix.Major(s.Dev), unix.Minor(s.Dev))),
		size: st.Blocks * uint64(st.Bsize), inodes: st.Files, inodesFree: st.Ffree}
}
