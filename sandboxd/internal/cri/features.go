package cri

import (
	"fmt"
	"slices"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// What the runtime supports is told to the kubelet in Status (its runtime
// handlers' features and the runtime's features), so that it never sends a
// pod needing more; a request that needs more anyway (crictl, an older
// kubelet) is refused, never half done.
//
// Not supported: user namespaces (the pod's own, and id-mapped mounts) and
// recursive read-only mounts, which need runc's "rro" mount option (runc
// 1.2; Debian 12's runc is 1.1.5).

// runtimeFeatures are the runtime-wide features of Status.
func runtimeFeatures() *runtimeapi.RuntimeFeatures {
	return &runtimeapi.RuntimeFeatures{
		SupplementalGroupsPolicy: true, // Strict, and ContainerStatus.user
		MountOptions:             true, // noexec, nodev, nosuid on bind mounts (mountOptionFlags)
	}
}

// runtimeHandlers lists the default handler ("") and every configured one.
func (s *Service) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	names := append([]string{""}, s.Config.Handlers()...)
	out := make([]*runtimeapi.RuntimeHandler, 0, len(names))
	for _, n := range names {
		out = append(out, &runtimeapi.RuntimeHandler{Name: n,
			Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: false, UserNamespaces: false}})
	}
	return out
}

// mountOptionFlags are the CRI mount_options a bind mount takes.
var mountOptionFlags = []string{"noexec", "nodev", "nosuid"}

// checkUserns refuses a user namespace of the pod's own.
func checkUserns(ns *runtimeapi.NamespaceOption) error {
	if ns.GetUsernsOptions() == nil { // the node's, as NODE says
		return nil
	}
	switch ns.GetUsernsOptions().GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil
	case runtimeapi.NamespaceMode_POD:
		return fmt.Errorf("user namespaces are not supported (userns_options mode POD): %w", errdefs.ErrNotImplemented)
	}
	return fmt.Errorf("userns_options mode %v: only NODE or POD: %w", ns.GetUsernsOptions().GetMode(), errdefs.ErrInvalidArgument)
}

// checkMountFeatures refuses what a mount asks for beyond the supported:
// id mappings, recursive read-only, unknown mount options.
func checkMountFeatures(mounts []*runtimeapi.Mount) error {
	for _, m := range mounts {
		dst := m.GetContainerPath()
		switch {
		case len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0:
			return fmt.Errorf("mount %q: id-mapped mounts (user namespaces) are not supported: %w", dst, errdefs.ErrNotImplemented)
		case m.GetRecursiveReadOnly():
			return fmt.Errorf("mount %q: recursive read-only mounts are not supported (runc 1.1 has no rro): %w", dst, errdefs.ErrNotImplemented)
		}
		for _, o := range m.GetMountOptions() {
			if !slices.Contains(mountOptionFlags, o) {
				return fmt.Errorf("mount %q: mount option %q is not one of %v: %w", dst, o, mountOptionFlags, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}
