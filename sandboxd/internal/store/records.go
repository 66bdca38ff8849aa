package store

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod is the persisted record of a pod sandbox.
type Pod struct {
	ID        string   `json:"id"`
	State     PodState `json:"state"`
	CreatedAt int64    `json:"created_at"`
	// Config is the protobuf-encoded runtime.v1.PodSandboxConfig.
	Config         []byte `json:"config"`
	RuntimeHandler string `json:"runtime_handler"`
	// Dir is the pod's directory under run_root (resolv.conf, hosts, shm).
	Dir          string   `json:"dir"`
	NetNS        string   `json:"netns,omitempty"`
	IPs          []string `json:"ips,omitempty"`
	IPCNS        string   `json:"ipcns,omitempty"`
	UTSNS        string   `json:"utsns,omitempty"`
	ShmPath      string   `json:"shm_path,omitempty"`
	CgroupParent string   `json:"cgroup_parent,omitempty"`
	// NameKey identifies the create request that reserved the pod's name
	// (a kubelet retry after a restart carries the same one).
	NameKey string `json:"name_key,omitempty"`
	// InfraID is the pause container's id when the pod shares one PID
	// namespace; empty otherwise.
	InfraID string `json:"infra_id,omitempty"`
}

// PodConfig decodes the pod's CRI config.
func (p *Pod) PodConfig() (*runtimeapi.PodSandboxConfig, error) {
	var c runtimeapi.PodSandboxConfig
	if err := proto.Unmarshal(p.Config, &c); err != nil {
		return nil, fmt.Errorf("decode pod %s config: %w", p.ID, err)
	}
	return &c, nil
}

// Container is the persisted record of a container.
type Container struct {
	ID         string         `json:"id"`
	PodID      string         `json:"pod_id"`
	State      ContainerState `json:"state"`
	CreatedAt  int64          `json:"created_at"`
	StartedAt  int64          `json:"started_at,omitempty"`
	FinishedAt int64          `json:"finished_at,omitempty"`
	ExitCode   int32          `json:"exit_code"`
	Reason     string         `json:"reason,omitempty"`
	Message    string         `json:"message,omitempty"`
	Pid        uint32         `json:"pid,omitempty"`
	// Config is the protobuf-encoded runtime.v1.ContainerConfig.
	Config   []byte `json:"config"`
	ImageID  string `json:"image_id"`
	ImageRef string `json:"image_ref"`
	LogPath  string `json:"log_path,omitempty"`
	// Bundle is the OCI bundle directory under run_root (also the shim's).
	Bundle string `json:"bundle"`
	// Resources is the protobuf-encoded runtime.v1.LinuxContainerResources
	// in effect (after UpdateContainerResources).
	Resources []byte `json:"resources,omitempty"`
	// Infra marks the pod's pause container (hidden from ListContainers).
	Infra bool `json:"infra,omitempty"`
	// NameKey identifies the create request that reserved the name.
	NameKey string `json:"name_key,omitempty"`
	// The identity the container's process starts with.
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// StopSignal is the image's stop signal (e.g. "SIGTERM").
	StopSignal string `json:"stop_signal,omitempty"`
}

// ContainerConfig decodes the container's CRI config.
func (c *Container) ContainerConfig() (*runtimeapi.ContainerConfig, error) {
	var cc runtimeapi.ContainerConfig
	if err := proto.Unmarshal(c.Config, &cc); err != nil {
		return nil, fmt.Errorf("decode container %s config: %w", c.ID, err)
	}
	return &cc, nil
}

// ContainerResources decodes the resources in effect (nil if none).
func (c *Container) ContainerResources() (*runtimeapi.LinuxContainerResources, error) {
	if len(c.Resources) == 0 {
		return nil, nil
	}
	var r runtimeapi.LinuxContainerResources
	if err := proto.Unmarshal(c.Resources, &r); err != nil {
		return nil, fmt.Errorf("decode container %s resources: %w", c.ID, err)
	}
	return &r, nil
}
