package cri

import (
	"fmt"
	"path/filepath"
	"slices"

	shimclient "flotilla.dev/shim/client"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// What the runtime supports is told to the kubelet in Status (its runtime
// handlers' features and the runtime's features), so that it never sends a
// pod needing more; a request that needs more anyway (crictl, an older
// kubelet) is refused, never half done.
//
// Not supported: user namespaces (the pod's own, and id-mapped mounts).
// Recursive read-only mounts are, with runc: runc 1.1 has no "rro" mount
// option, so flotilla-shim makes them read-only as a createContainer hook
// (shim/c/rro.c), in the container's mount namespace before pivot_root.

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
			Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: s.rroHook(n) != "", UserNamespaces: false}})
	}
	return out
}

// rroHook is the createContainer hook for recursive read-only mounts of
// handler's containers (oci.Input.RROHook): the shim, when the runtime is
// runc (which runs the hook in the container's mount namespace before
// pivot_root); "" for other runtimes.
func (s *Service) rroHook(handler string) string {
	rt, ok := s.Config.Runtime(handler)
	if !ok || filepath.Base(rt.Path) != "runc" {
		return ""
	}
	s.shimOnce.Do(func() {
		if p, err := shimclient.FindShim(s.Config.ShimPath); err == nil {
			s.shimAbs, _ = filepath.Abs(p)
		}
	})
	return s.shimAbs
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
// id mappings, unknown mount options.
func checkMountFeatures(mounts []*runtimeapi.Mount) error {
	for _, m := range mounts {
		dst := m.GetContainerPath()
		if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
			return fmt.Errorf("mount %q: id-mapped mounts (user namespaces) are not supported: %w", dst, errdefs.ErrNotImplemented)
		}
		for _, o := range m.GetMountOptions() {
			if !slices.Contains(mountOptionFlags, o) {
				return fmt.Errorf("mount %q: mount option %q is not one of %v: %w", dst, o, mountOptionFlags, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}
